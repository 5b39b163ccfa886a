"""The live channel: kiosks hold a WebSocket and hear about uses, prints and deletions at once.

Changes are coalesced for a moment and pushed as one message with the tickets' current compact
rows (the same form as delta sync), so a burst of redeems costs one database read, not one per
scan. Delta sync stays the source of truth: a kiosk that misses a push catches up by cursor.

The fast path above (:meth:`LiveHub.notify`) hears of changes made through this node's own
requests. The follow loop hears of every other change (another node, a tool, any path): while the
hub has sockets, it reads the tickets whose sync number moved past its cursor and queues them like
the fast path does. On PostgreSQL it runs when another node's transaction announces a change
(``server.notify.TICKETS``: ``LISTEN/NOTIFY``, delivered at that commit, so within milliseconds)
and after the node's listener reconnects; on SQLite, the one process, it looks every quarter
second for what changed outside its requests. One loop sends everything and remembers which
version (sync number) of each ticket it sent, so a change heard both ways goes out once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from aiohttp import WSCloseCode, web

from gate_core.clock import utc_iso
from gate_core.wire import CLOSE_REVOKED, LIVE_HELLO, LIVE_TICKETS, TICKET_COLUMNS
from server.db import Database
from server.gate.kiosks import KIOSKS
from server.gate.sync import changed_rows, current_seq, sync_state, ticket_changes
from server.notify import LISTENER, TICKETS
from server.sql import Connection

log = logging.getLogger(__name__)
# Where a pushed ticket row (a sync page's plain tuple) keeps its id and its change number.
_ID, _SEQ = TICKET_COLUMNS.index("id"), TICKET_COLUMNS.index("seq")

COALESCE_SECONDS = 0.05
#: How often the follow loop looks for changes when nothing announces them (SQLite).
POLL_SECONDS = 0.25
#: More changes than this since the last look (a bulk generation, say) are left to delta sync.
POLL_MAX_TICKETS = 2000
PING_SECONDS = 15.0
SEND_TIMEOUT = 5.0


def changed_since(db: Connection, seq: int, limit: int = POLL_MAX_TICKETS) -> tuple[int, list[tuple]]:
    """(new cursor, [(ticket id, sync number)] changed after ``seq``); nothing when over ``limit``.

    Writes commit one at a time, each with higher sequence numbers than the last, so once a
    number is visible every lower one is too and the cursor never skips a change.
    """
    rows = changed_rows(db, seq, limit + 1, ids_only=True)
    if len(rows) > limit:
        return max(current_seq(db), rows[-1][1]), []  # too many for a push: kiosks sync them
    return (rows[-1][1] if rows else seq), rows


class LiveHub:
    """The set of connected kiosk sockets and the task that pushes changes to them."""

    def __init__(self, db: Database, *, announced: bool = False) -> None:
        self._db = db
        #: Changes are announced (PostgreSQL's NOTIFY): follow them instead of looking every POLL_SECONDS.
        self._announced = announced
        self._changed = asyncio.Event()
        self._sockets: dict[web.WebSocketResponse, int] = {}
        self._pending: set[int] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._closing: set[asyncio.Task] = set()
        #: Sync number up to which the poll has looked (None while the hub has no sockets).
        self._cursor: int | None = None
        #: ticket id → the sync number of the version last sent (forgotten once the poll is past it).
        self._sent: dict[int, int] = {}

    @property
    def connected_kiosks(self) -> set[int]:
        return set(self._sockets.values())

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._push_loop()),
            asyncio.create_task(self._ping_loop()),
            asyncio.create_task(self._follow_loop()),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for ws in list(self._sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
        self._sockets.clear()

    def changed_elsewhere(self, _payload: str = "") -> None:
        """Something changed that this node's requests did not do (an announcement, a reconnect)."""
        self._changed.set()

    def notify(self, ticket_ids: list[int]) -> None:
        """Queue tickets whose change kiosks must hear about (cheap: called on the redeem path)."""
        if self._sockets and ticket_ids:
            self._pending.update(ticket_ids)
            self._wake.set()

    async def hello(self, ws: web.WebSocketResponse, kiosk_id: int) -> bool:
        """Greet a kiosk's new socket and follow it; False when the kiosk is already gone (its link dropped
        while the hello was being read: it connects again)."""
        seq, epoch = await self._db.read(sync_state)
        hello = {"type": LIVE_HELLO, "seq": seq, "epoch": epoch, "server_time": utc_iso(datetime.now(UTC))}
        try:
            await ws.send_str(json.dumps(hello))
        except (ConnectionError, RuntimeError):  # aiohttp's "Cannot write to closing transport" is one
            return False
        if self._cursor is None or self._cursor > seq:
            self._cursor = seq
        self._sockets[ws] = kiosk_id
        return True

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
            # Rows are read after the change that queued them committed, so each is that version
            # or a newer one; a version already sent (heard both ways) is left out.
            fresh = [row for row in changes["tickets"] if self._sent.get(row[_ID], -1) < row[_SEQ]]
            if not fresh:
                continue
            for row in fresh:
                self._sent[row[_ID]] = row[_SEQ]
            changes["tickets"], changes["seq"] = fresh, fresh[-1][_SEQ]
            await self._broadcast(json.dumps({"type": LIVE_TICKETS, **changes}, separators=(",", ":")))

    async def _next_change(self) -> None:
        if self._announced:
            await self._changed.wait()
            # Under a stream of redeems on other nodes every transaction announces: what they
            # announce in this moment is read once, not once per announcement.
            await asyncio.sleep(COALESCE_SECONDS)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), POLL_SECONDS)
        self._changed.clear()

    async def _follow_loop(self) -> None:
        while True:
            await self._next_change()
            if not self._sockets:
                self._cursor = None
                self._sent.clear()
                continue
            if self._cursor is None:
                continue  # set by the next hello
            try:
                cursor, rows = await self._db.read(changed_since, self._cursor)
            except Exception:  # noqa: BLE001 - the loop must outlive one failed read
                log.exception("live follow failed; kiosks will catch up by delta sync")
                continue
            self._cursor = max(cursor, self._cursor or 0)
            unsent = [ticket_id for ticket_id, seq in rows if self._sent.get(ticket_id, -1) < seq]
            # A version at or below the cursor is never read again; only the fast path could
            # hear of it again, and then a repeat is harmless.
            self._sent = {ticket_id: seq for ticket_id, seq in self._sent.items() if seq > self._cursor}
            if unsent:
                self._pending.update(unsent)
                self._wake.set()

    async def _ping_loop(self) -> None:
        while True:
            await asyncio.sleep(PING_SECONDS)
            if self._sockets:
                await self._broadcast(json.dumps({"type": "ping", "server_time": utc_iso(datetime.now(UTC))}))


LIVE = web.AppKey("gate_live", LiveHub)


async def live_ctx(app: web.Application) -> AsyncIterator[None]:
    """Own the hub for the app's lifetime; every socket is closed at shutdown."""
    from server.web import DB

    db = app[DB]
    hub = LiveHub(db, announced=db.dialect_name == "postgresql")
    app[LIVE] = hub
    app[KIOSKS].revoke_listeners.append(hub.kiosk_revoked)
    listener = app[LISTENER]
    listener.subscribe(TICKETS, hub.changed_elsewhere)
    listener.on_reconnect(hub.changed_elsewhere)  # what was announced meanwhile: caught up by cursor
    hub.start()
    yield
    await hub.stop()
