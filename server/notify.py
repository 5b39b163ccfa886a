"""What one node changes, every node hears at once: PostgreSQL ``LISTEN/NOTIFY``.

Several server nodes share one PostgreSQL database and each caches a little of it (kiosk tokens,
signing keys) and holds its own kiosks' live sockets. A transaction that changes something the
others must learn calls :func:`announce`: a ``NOTIFY`` inside that same transaction, so PostgreSQL
delivers it to every listening node when, and only if, it commits. Each node keeps one
:class:`Listener` connection that hears them and hands them to the parts that care.

A listener that loses its connection (the database restarted, a standby promoted) connects again
on its own, and then tells every subscriber to catch up: what was announced while it was away
was not queued for it. On SQLite there is one process and nothing to hear from: :func:`announce`
does nothing and the in-process paths (``KioskRegistry.revoke``, ``LiveHub.notify``) do it all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import psycopg
from aiohttp import web

log = logging.getLogger(__name__)

#: A ticket's sync number moved (print, deletion, use, new key…): live hubs push what changed.
TICKETS = "portgate_tickets"
#: A kiosk was revoked (payload: its id): every node closes its live socket.
KIOSKS = "portgate_kiosks"
#: The signing keys changed: every node reloads them.
KEYS = "portgate_keys"

#: Seconds without a notification after which the listener checks its connection is alive (a
#: database host that vanished sends no reset: without this, the node would wait forever).
HEARTBEAT_SECONDS = 5.0
#: Pauses between attempts to connect again, growing to the last.
RECONNECT_SECONDS = (0.1, 0.25, 0.5, 1.0, 2.0)


def _is_postgresql(db: Any) -> bool:
    """Whether ``db`` (a service function's connection) is PostgreSQL's."""
    dialect = getattr(db, "dialect", None)
    return dialect is not None and dialect.name == "postgresql"


def announce(db: Any, channel: str, payload: str = "") -> None:
    """Tell every node, when the caller's transaction commits, that ``channel`` changed.

    Two announcements of one channel and payload in one transaction reach listeners once.
    """
    if _is_postgresql(db):
        db.execute("SELECT pg_notify(?, ?)", (channel, payload))


Handler = Callable[[str], None]


class Listener:
    """One node's listening connection: ``channel → handler(payload)``, plus ``on_reconnect``.

    It listens on every channel above from the start, so subscribers may subscribe in any order
    during start-up. Handlers run on the event loop and must be quick (set an event, queue a
    task). ``on_reconnect`` handlers run after every (re)connection but the first, for what may
    have been missed. Without a URL (SQLite: one process) it never connects and nothing is heard.
    """

    CHANNELS = (TICKETS, KIOSKS, KEYS)

    def __init__(self, url: str | None) -> None:
        self._url = url
        self._handlers: dict[str, list[Handler]] = {}
        self._on_reconnect: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    def subscribe(self, channel: str, handler: Handler) -> None:
        self._handlers.setdefault(channel, []).append(handler)

    def on_reconnect(self, handler: Callable[[], None]) -> None:
        self._on_reconnect.append(handler)

    async def start(self, timeout: float = 30.0) -> None:
        """Listen from now on; returns once listening, so nothing committed after start is missed."""
        if self._url is None:
            return
        self._task = asyncio.create_task(self._run())
        try:
            await asyncio.wait_for(asyncio.shield(self.connected.wait()), timeout)
        except TimeoutError:
            log.warning("not listening for other nodes' changes yet; retrying in the background")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        attempt, first = 0, True
        while True:
            try:
                assert self._url is not None
                async with await psycopg.AsyncConnection.connect(self._url, autocommit=True) as conn:
                    for channel in self.CHANNELS:
                        await conn.execute(f'LISTEN "{channel}"')
                    attempt = 0
                    self.connected.set()
                    if not first:
                        log.info("listening for other nodes' changes again")
                        self._dispatch_reconnect()
                    first = False
                    await self._hear(conn)
            except (psycopg.Error, OSError, TimeoutError) as exc:
                if self.connected.is_set():
                    log.warning("lost the connection that hears other nodes' changes: %s", exc)
                self.connected.clear()
            await asyncio.sleep(RECONNECT_SECONDS[min(attempt, len(RECONNECT_SECONDS) - 1)])
            attempt += 1

    async def _hear(self, conn: psycopg.AsyncConnection) -> None:
        while True:
            async for note in conn.notifies(timeout=HEARTBEAT_SECONDS):
                self._dispatch(note.channel, note.payload)
            await asyncio.wait_for(conn.execute("SELECT 1"), HEARTBEAT_SECONDS)

    def _dispatch(self, channel: str, payload: str) -> None:
        for handler in self._handlers.get(channel, ()):
            try:
                handler(payload)
            except Exception:  # noqa: BLE001 - one subscriber's bug must not deafen the others
                log.exception("a %s notification handler failed", channel)

    def _dispatch_reconnect(self) -> None:
        for handler in self._on_reconnect:
            try:
                handler()
            except Exception:  # noqa: BLE001 - as above
                log.exception("a reconnect handler failed")


LISTENER = web.AppKey("notify_listener", Listener)


async def listener_ctx(app: web.Application) -> AsyncIterator[None]:
    """This node's listener (PostgreSQL only), listening before the node serves its first request."""
    from server.web import DB

    db = app[DB]
    listener = Listener(db.url if db.dialect_name == "postgresql" else None)
    app[LISTENER] = listener
    await listener.start()
    yield
    await listener.stop()
