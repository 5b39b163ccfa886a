"""Gate area: the kiosk protocol (``/api/v1/gate/...``) and the gate supervisor's pages.

``setup(app)`` adds the routes, the supervisor's menu entries, the OpenAPI entries, the kiosk
cache and live hub (owned by a cleanup context), and a ticket listener so that prints and
deletions made in the customer portal reach the kiosks within a second.

With several nodes (PostgreSQL) each has its own kiosk cache and live hub; they stay in step
through the database and its announcements (see ``kiosks``, ``live`` and ``server.notify``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from server.gate import api, docs, kiosk_views, redeem, staff_api, views
from server.gate.batching import CODE_CHECK_THREADS, CODE_CHECKS, REDEEMS, GroupCommit
from server.gate.kiosks import KIOSKS, LIVENESS_FLUSH_SECONDS, KioskRegistry
from server.gate.live import LIVE, live_ctx
from server.i18n import N_
from server.menu import MENU, MenuEntry
from server.notify import KIOSKS as KIOSKS_CHANNEL
from server.notify import LISTENER
from server.openapi import API_DOCS
from server.tickets import TICKET_LISTENERS
from server.web import DB

log = logging.getLogger(__name__)


async def _flush_liveness(app: web.Application) -> None:
    registry = app[KIOSKS]
    while True:
        await asyncio.sleep(LIVENESS_FLUSH_SECONDS)
        # A kiosk listening on a socket is alive even when it sends nothing; saving that lets the
        # supervisor page of any node show it online, not only the page of this socket's node.
        states = registry.live_state()
        now = time.time()
        for kiosk_id in app[LIVE].connected_kiosks:
            state = states.get(kiosk_id)
            if state is not None:
                state.last_seen, state.dirty = now, True
        # On a shared database, where the sockets are too: for the kiosk lists other nodes answer (server.gate.staff).
        live_here = app[LIVE].connected_kiosks if registry.checks_in_write else ()
        try:
            await registry.flush(live_here)
        except Exception:  # noqa: BLE001 - keep flushing; a missed "last seen" is not worth a crash
            log.exception("could not save kiosk liveness")


def _catch_up_kiosks(registry: KioskRegistry) -> None:
    """After the listener reconnects: revocations announced meanwhile were not heard, so re-read."""

    async def catch_up() -> None:
        try:
            await registry.catch_up()
        except Exception:  # noqa: BLE001 - requests read the status themselves anyway
            log.exception("could not re-read the kiosks")

    task = asyncio.get_running_loop().create_task(catch_up())
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)


_BACKGROUND: set[asyncio.Task] = set()


async def kiosks_ctx(app: web.Application) -> AsyncIterator[None]:
    """The kiosk token cache, following revocations other nodes announce."""
    db = app[DB]
    registry = KioskRegistry(db, shared=db.dialect_name == "postgresql")
    app[KIOSKS] = registry
    listener = app[LISTENER]
    listener.subscribe(KIOSKS_CHANNEL, registry.revoked_elsewhere)
    listener.on_reconnect(lambda: _catch_up_kiosks(registry))
    yield
    await registry.flush()


async def kiosk_tasks_ctx(app: web.Application) -> AsyncIterator[None]:
    """Background work on the kiosk cache (started after the live hub, which it reads)."""
    tasks = [asyncio.create_task(_flush_liveness(app))]
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def redeem_ctx(app: web.Application) -> AsyncIterator[None]:
    """The redeem group commit and the signature-checking threads; queued redeems finish first."""
    app[REDEEMS] = GroupCommit(app[DB], redeem.redeem_batch)
    app[CODE_CHECKS] = ThreadPoolExecutor(CODE_CHECK_THREADS, thread_name_prefix="gate-codes")
    yield
    await app[REDEEMS].close()
    app[CODE_CHECKS].shutdown(wait=True)


def setup(app: web.Application) -> None:
    """Register the kiosk protocol routes, supervisor pages, menu entries and live channel."""
    app.cleanup_ctx.append(kiosks_ctx)
    app.cleanup_ctx.append(live_ctx)
    app.cleanup_ctx.append(kiosk_tasks_ctx)
    app.cleanup_ctx.append(redeem_ctx)
    app.router.add_routes(api.routes)
    app.router.add_routes(views.routes)
    app.router.add_routes(kiosk_views.routes)
    app.router.add_routes(staff_api.routes)

    async def push_to_kiosks(ticket_ids: list[int]) -> None:
        app[LIVE].notify(ticket_ids)

    app[TICKET_LISTENERS].append(push_to_kiosks)
    for label, href in (
        (N_("Kiosks"), "/gate/kiosks"),
        (N_("Scan log"), "/gate/scans"),
        (N_("Conflicts"), "/gate/conflicts"),
    ):
        app[MENU].add(MenuEntry(label, href, ("gate_supervisor", "admin")))
    docs.document_routes(app[API_DOCS])
