"""HTTP client for the kiosk protocol (``/api/v1/gate/...``); every call has a short timeout."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp

from gate_core.wire import CLOSE_REVOKED

log = logging.getLogger(__name__)
#: The headers a kiosk adds to every request to say how it is (read at each request).
ReportHeaders = Callable[[], Mapping[str, str]]


class ServerError(Exception):
    """The server answered with an error; ``code`` is its stable error code, ``fields`` the
    field-by-field messages of a validation error (``{"scans.3.reason": "..."}``)."""

    def __init__(self, status: int, code: str, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.fields = fields or {}


class Unreachable(Exception):
    """No answer in time (network down, server stopped, timeout)."""


def _server_error(status: int, data: Any) -> ServerError:
    """The server's ``{"error": {"code", "message", "fields"}}``, read without trusting its shape."""
    error = data.get("error") if isinstance(data, dict) else None
    error = error if isinstance(error, dict) else {}
    code, message, fields = error.get("code"), error.get("message"), error.get("fields")
    return ServerError(
        status,
        code if isinstance(code, str) else "error",
        message if isinstance(message, str) else "",
        {str(k): str(v) for k, v in fields.items()} if isinstance(fields, dict) else {},
    )


class GateClient:
    """The kiosk's side of the protocol; ``report_headers`` says how the kiosk is with every request."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        session: aiohttp.ClientSession,
        report_headers: ReportHeaders = dict,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._session = session
        self._report_headers = report_headers

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **self._report_headers()} if self.token else {}

    async def _call(self, method: str, path: str, *, timeout: float, **kwargs: Any) -> Any:
        try:
            async with self._session.request(
                method,
                self.base_url + path,
                headers=self._headers(),
                timeout=aiohttp.ClientTimeout(total=timeout),
                **kwargs,
            ) as resp:
                body = await resp.read()
                try:
                    data = json.loads(body) if body else {}
                except ValueError:
                    data = {}
                if resp.status >= 400:
                    raise _server_error(resp.status, data)
                if not isinstance(data, dict) or not data:
                    # Every answer of the kiosk protocol is a JSON object: anything else (a captive
                    # portal's page, a proxy's error) did not come from the server, so nothing was done.
                    raise Unreachable(f"unexpected answer from {path} (HTTP {resp.status})")
                return data
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise Unreachable(str(exc) or type(exc).__name__) from exc

    async def enrol(self, enrol_code: str, fingerprint: str, agent_version: str) -> dict[str, Any]:
        return await self._call(
            "POST",
            "/api/v1/gate/enrol",
            timeout=15,
            json={"enrol_code": enrol_code, "fingerprint": fingerprint, "agent_version": agent_version},
        )

    async def sync_page(self, cursor: int, limit: int = 50_000, pending_uploads: int = 0) -> dict[str, Any]:
        return await self._call(
            "GET",
            "/api/v1/gate/sync",
            timeout=60,
            params={"cursor": str(cursor), "limit": str(limit), "pending_uploads": str(pending_uploads)},
        )

    async def redeem(self, scan_id: str, code: str, scanned_at: datetime, timeout: float) -> dict[str, Any]:
        return await self._call(
            "POST",
            "/api/v1/gate/redeem",
            timeout=timeout,
            json={"scan_id": scan_id, "code": code, "scanned_at": scanned_at.astimezone(UTC).isoformat()},
        )

    async def upload(self, scans: list[dict[str, Any]], pending_uploads: int) -> dict[str, Any]:
        return await self._call(
            "POST", "/api/v1/gate/scans", timeout=20, json={"scans": scans, "pending_uploads": pending_uploads}
        )

    async def me(self) -> dict[str, Any]:
        """This kiosk as the server knows it (name, gate, allowed itineraries)."""
        return await self._call("GET", "/api/v1/gate/me", timeout=10)

    async def server_time(self) -> datetime:
        data = await self._call("GET", "/api/v1/gate/time", timeout=5)
        return datetime.fromisoformat(data["server_time"].replace("Z", "+00:00"))

    async def live(self) -> AsyncIterator[dict[str, Any]]:
        """Messages of the live channel until it closes (raises Unreachable/ServerError on failure)."""
        url = self.base_url.replace("http", "ws", 1) + "/api/v1/gate/live"
        try:
            async with self._session.ws_connect(
                url, headers=self._headers(), heartbeat=20, timeout=aiohttp.ClientWSTimeout(ws_close=5)
            ) as ws:
                async for message in ws:
                    if message.type == aiohttp.WSMsgType.TEXT:
                        try:
                            yield json.loads(message.data)
                        except ValueError:
                            log.warning("ignoring a live message that is not JSON")
                    elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.ERROR):
                        break
                # (aiohttp ends the iteration at the server's close frame; its code is kept here.)
                if ws.close_code == CLOSE_REVOKED:
                    raise ServerError(403, "revoked_kiosk", "the server closed the live channel: kiosk revoked")
        except aiohttp.WSServerHandshakeError as exc:
            # The handshake's answer carries no error code (it may be a proxy's): the next pull's
            # /gate/me says whether the server really refuses this kiosk.
            raise ServerError(exc.status, "error", str(exc)) from exc
        except (aiohttp.ClientError, TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
            raise Unreachable(str(exc) or type(exc).__name__) from exc
