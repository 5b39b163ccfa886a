"""Text messages for phone confirmation, behind a small interface.

``[sms] backend`` chooses the sender: ``log`` records each message to a file (the demo, and any box
that reaches no gateway); ``http`` posts it to an SMS gateway's HTTP endpoint (:class:`HttpSmsSender`).
Another gateway kind plugs in by implementing :class:`SmsSender` (``send(phone, text)``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from server.config import Config, SmsConfig

log = logging.getLogger(__name__)


class SmsNotSent(Exception):
    """The gateway refused the message, or did not take it after every retry."""


class SmsSender(Protocol):
    async def send(self, phone: str, text: str) -> None: ...


class FileSmsSender:
    """Appends each message as a JSON line to ``<data_dir>/sms.log``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def send(self, phone: str, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"at": time.time(), "phone": phone, "text": text}) + "\n")


def masked_phone(phone: str) -> str:
    """The phone for log lines: enough to tell messages apart, not enough to collect numbers."""
    return "*" * max(len(phone) - 4, 0) + phone[-4:]


def filled_template(template: Any, phone: str, text: str) -> Any:
    """``template`` (parsed JSON) with ``{phone}`` and ``{text}`` replaced inside its strings.

    Replacing in the parsed structure, not in the JSON text, keeps a quote or a newline in the
    message from breaking the body.
    """
    if isinstance(template, str):
        return template.replace("{phone}", phone).replace("{text}", text)
    if isinstance(template, dict):
        return {key: filled_template(value, phone, text) for key, value in template.items()}
    if isinstance(template, list):
        return [filled_template(value, phone, text) for value in template]
    return template


class HttpSmsSender:
    """Posts each message as JSON to the gateway, retrying with backoff on a 5xx, a timeout or a
    refused connection; a 4xx is the gateway's final word. Log lines never hold the text (it is a code)."""

    def __init__(self, settings: SmsConfig, session: Callable[[], aiohttp.ClientSession]) -> None:
        self.settings = settings
        self.session = session  # the app's shared session, which exists only once the app has started
        self.template = json.loads(settings.body_template)

    def _headers(self) -> dict[str, str]:
        if self.settings.auth == "bearer":
            return {"Authorization": f"Bearer {self.settings.token}"}
        if self.settings.auth == "basic":
            return {"Authorization": aiohttp.encode_basic_auth(self.settings.username, self.settings.password)}
        return {}

    async def _post(self, body: Any) -> int:
        """The gateway's status for one try."""
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_s)
        async with self.session().post(
            self.settings.url, json=body, headers=self._headers(), timeout=timeout
        ) as response:
            await response.read()  # not logged: a gateway may echo the message back
            return response.status

    async def send(self, phone: str, text: str) -> None:
        body = filled_template(self.template, phone, text)
        shown = masked_phone(phone)
        tries = self.settings.retries + 1
        for attempt in range(1, tries + 1):
            started = time.monotonic()
            try:
                status = await self._post(body)
            except (TimeoutError, aiohttp.ClientError) as exc:
                outcome = f"failed ({type(exc).__name__})"
            else:
                took = time.monotonic() - started
                if status < 400:
                    log.info("sms to %s sent (try %d, status %d, %.2f s)", shown, attempt, status, took)
                    return
                if status < 500:
                    log.error("sms to %s refused by the gateway (status %d); not retried", shown, status)
                    raise SmsNotSent(f"gateway answered {status}")
                outcome = f"answered {status}"
            if attempt == tries:
                log.error("sms to %s not sent: the gateway %s on try %d of %d", shown, outcome, attempt, tries)
                raise SmsNotSent(f"gateway {outcome}")
            wait = self.settings.backoff_s * 2 ** (attempt - 1)
            log.warning(
                "sms to %s: the gateway %s on try %d of %d; again in %.1f s", shown, outcome, attempt, tries, wait
            )
            await asyncio.sleep(wait)


def sms_sender(config: Config, session: Callable[[], aiohttp.ClientSession]) -> SmsSender:
    """The sender ``[sms] backend`` names; ``session`` gives the app's shared HTTP session."""
    if config.sms.backend == "http":
        return HttpSmsSender(config.sms, session)
    return FileSmsSender(config.data_path / "sms.log")
