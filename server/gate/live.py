"""The live channel: kiosks hold a WebSocket and hear about uses, prints and deletions at once.

Changes are coalesced for a moment and pushed as one message with the tickets' current compact
rows (the same form as delta sync), so a burst of redeems costs one database read, not one per
scan. Delta sync stays the source of truth: a kiosk that misses a push catches up by cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from aiohttp import WSCloseCode, web

from server.db import Database
from server.gate.kiosks import KIOSKS, iso
from server.gate.sync import current_seq, ticket_changes

log = logging.getLogger(__name__)

COALESCE_SECONDS = 0.05
PING_SECONDS = 15.0
SEND_TIMEOUT = 5.0
#: Close code telling a kiosk it was revoked (4000-4999 are free for applications).
CLOSE_REVOKED = 4003


class LiveHub:
    """The set of connected kiosk sockets and the task that pushes changes to them."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._sockets: dict[web.WebSocketResponse, int] = {}
        self._pending: set[int] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._closing: set[asyncio.Task] = set()

    @property
    def connected_kiosks(self) -> set[int]:
        return set(self._sockets.values())

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._push_loop()), asyncio.create_task(self._ping_loop())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for ws in list(self._sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
        self._sockets.clear()

    def notify(self, ticket_ids: list[int]) -> None:
        """Queue tickets whose change kiosks must hear about (cheap: called on the redeem path)."""
        if self._sockets and ticket_ids:
            self._pending.update(ticket_ids)
            self._wake.set()

    async def hello(self, ws: web.WebSocketResponse, kiosk_id: int) -> None:
        seq = await self._db.read(current_seq)
        await ws.send_str(json.dumps({"type": "hello", "seq": seq, "server_time": iso(datetime.now(UTC))}))
        self._sockets[ws] = kiosk_id

    def forget(self, ws: web.WebSocketResponse) -> None:
        self._sockets.pop(ws, None)

    def kiosk_revoked(self, kiosk_id: int) -> None:
        """Close a revoked kiosk's sockets soon (for callers that cannot await)."""
        task = asyncio.get_running_loop().create_task(self.disconnect_kiosk(kiosk_id))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def disconnect_kiosk(self, kiosk_id: int) -> None:
        for ws, owner in list(self._sockets.items()):
            if owner == kiosk_id:
                self._sockets.pop(ws, None)
                await ws.close(code=CLOSE_REVOKED, message=b"revoked_kiosk")

    async def _broadcast(self, message: str) -> None:
        for ws in list(self._sockets):
            try:
                await asyncio.wait_for(ws.send_str(message), SEND_TIMEOUT)
            except (ConnectionError, RuntimeError, TimeoutError):
                # A dead or stuck socket must not hold up the others; its handler cleans up.
                self._sockets.pop(ws, None)

    async def _push_loop(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(COALESCE_SECONDS)
            self._wake.clear()
            ids, self._pending = list(self._pending), set()
            if not ids or not self._sockets:
                continue
            try:
                changes = await self._db.read(ticket_changes, ids)
            except Exception:  # noqa: BLE001 - the push loop must outlive one failed read
                log.exception("live push failed; kiosks will catch up by delta sync")
                continue
            await self._broadcast(json.dumps({"type": "tickets", **changes}, separators=(",", ":")))

    async def _ping_loop(self) -> None:
        while True:
            await asyncio.sleep(PING_SECONDS)
            if self._sockets:
                await self._broadcast(json.dumps({"type": "ping", "server_time": iso(datetime.now(UTC))}))


LIVE = web.AppKey("gate_live", LiveHub)


async def live_ctx(app: web.Application) -> AsyncIterator[None]:
    """Own the hub for the app's lifetime; every socket is closed at shutdown."""
    from server.web import DB

    hub = LiveHub(app[DB])
    app[LIVE] = hub
    app[KIOSKS].revoke_listeners.append(hub.kiosk_revoked)
    hub.start()
    yield
    await hub.stop()
