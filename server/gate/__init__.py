"""Gate area: the kiosk protocol (``/api/v1/gate/...``) and the gate supervisor's pages.

``setup(app)`` adds the routes, the supervisor's menu entries, the OpenAPI entries, the kiosk
cache and live hub (owned by a cleanup context), and a ticket listener so that prints and
deletions made in the customer portal reach the kiosks within a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from server.gate import api, docs, redeem, views
from server.gate.batching import CODE_CHECK_THREADS, CODE_CHECKS, REDEEMS, GroupCommit
from server.gate.kiosks import KIOSKS, KioskRegistry
from server.gate.live import LIVE, live_ctx
from server.i18n import N_
from server.menu import MenuEntry, register
from server.tickets import TICKET_LISTENERS
from server.web import DB

log = logging.getLogger(__name__)

LIVENESS_FLUSH_SECONDS = 5.0


async def _flush_liveness(registry: KioskRegistry) -> None:
    while True:
        await asyncio.sleep(LIVENESS_FLUSH_SECONDS)
        try:
            await registry.flush()
        except Exception:  # noqa: BLE001 - keep flushing; a missed "last seen" is not worth a crash
            log.exception("could not save kiosk liveness")


async def kiosks_ctx(app: web.Application) -> AsyncIterator[None]:
    """The kiosk token cache and the task that saves kiosks' last-seen times every few seconds."""
    registry = KioskRegistry(app[DB])
    app[KIOSKS] = registry
    task = asyncio.create_task(_flush_liveness(registry))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await registry.flush()


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
    app.cleanup_ctx.append(redeem_ctx)
    app.router.add_routes(api.routes)
    app.router.add_routes(views.routes)

    async def push_to_kiosks(ticket_ids: list[int]) -> None:
        app[LIVE].notify(ticket_ids)

    app[TICKET_LISTENERS].append(push_to_kiosks)
    for label, href in (
        (N_("Kiosks"), "/gate/kiosks"),
        (N_("Scan log"), "/gate/scans"),
        (N_("Conflicts"), "/gate/conflicts"),
    ):
        register(MenuEntry(label, href, ("gate_supervisor", "admin")))
    docs.document_routes()
