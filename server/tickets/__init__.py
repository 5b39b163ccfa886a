"""Gate tickets area: shared app keys and the change-notification seam used by the kiosk protocol."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from aiohttp import web

from server.notify import KEYS as KEYS_CHANNEL
from server.notify import LISTENER
from server.openapi import API_DOCS
from server.sql import Connection
from server.tickets.service import KeyRing, ensure_signing_key, load_keys
from server.web import DB

log = logging.getLogger(__name__)

#: The Ed25519 signing keys (private: server only) and their public halves for kiosks.
KEYS = web.AppKey("keys", KeyRing)

#: Async callables called with ticket ids after a change kiosks must learn at once (print, delete, use).
TICKET_LISTENERS = web.AppKey("ticket_listeners", list)

#: On SQLite, how often the process checks whether the signing keys changed (a rotation made by a
#: tool reaches it within this). On PostgreSQL a rotation is announced (``server.notify.KEYS``).
KEYS_CHECK_SECONDS = 0.5


def keys_version(db: Connection) -> tuple:
    """Something that changes whenever a signing key is added, retired or removed."""
    return db.execute("SELECT COUNT(*), MAX(key_id), COUNT(retired_at) FROM signing_keys").fetchone()


async def _follow_keys(app: web.Application, version: tuple, announced: asyncio.Event | None) -> None:
    """Reload the keys when they changed: when told (``announced``, PostgreSQL), else every few moments."""
    db = app[DB]
    while True:
        if announced is None:
            await asyncio.sleep(KEYS_CHECK_SECONDS)
        else:
            await announced.wait()
            announced.clear()
        try:
            current = await db.read(keys_version)
            if current != version:
                _update_in_place(app[KEYS], await db.read(load_keys))
                version = current
                log.info("signing keys reloaded", extra={"keys": current[0], "current": current[1]})
        except Exception:  # noqa: BLE001 - keep the keys we have and try again
            log.exception("could not check the signing keys")


async def keys_ctx(app: web.Application) -> AsyncIterator[None]:
    """Load the signing keys, and keep them current while the app runs."""
    await app[DB].write(ensure_signing_key, datetime.now(UTC))
    version = await app[DB].read(keys_version)  # before the keys: a rotation in between is seen
    app[KEYS] = await app[DB].read(load_keys)
    announced = None
    if app[DB].dialect_name == "postgresql":
        announced = asyncio.Event()
        app[LISTENER].subscribe(KEYS_CHANNEL, lambda _payload: announced.set())
        app[LISTENER].on_reconnect(announced.set)  # a rotation announced meanwhile was not heard
        announced.set()  # one check now: a rotation announced before this subscribed went unheard
    task = asyncio.create_task(_follow_keys(app, version, announced))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _update_in_place(ring: KeyRing, fresh: KeyRing) -> None:
    """Make the app's key ring (a started app's state is not replaced) equal to ``fresh``.

    New keys are added before ``current`` names them, so a thread checking a code meanwhile
    never looks up a missing key.
    """
    ring.signing.update(fresh.signing)
    ring.verify.update(fresh.verify)
    for gone in set(ring.signing) - set(fresh.signing):
        ring.signing.pop(gone, None)
        ring.verify.pop(gone, None)
    object.__setattr__(ring, "current", fresh.current)  # frozen for its readers; written only here


async def tickets_changed(app: web.Application, ticket_ids: list[int]) -> None:
    for listener in app[TICKET_LISTENERS]:
        await listener(ticket_ids)


def setup(app: web.Application) -> None:
    """The area's state, its staff pages and API, and the phone and share-link pages (the customer pages and
    API are added by ``server.app``)."""
    # Imported here: these modules import this package's keys.
    from server.tickets import billing_views, ops_views, phone_views, printing, share_docs, share_views, staff_api

    app[TICKET_LISTENERS] = []
    app.cleanup_ctx.append(keys_ctx)
    app.cleanup_ctx.append(printing.pdf_renderer_ctx)  # a process, started on the first print
    app.router.add_routes(billing_views.routes)
    app.router.add_routes(ops_views.routes)
    app.router.add_routes(staff_api.routes)
    staff_api.document_routes(app[API_DOCS])
    app.router.add_routes(phone_views.routes)  # the ticket on the phone, and the driver share links
    app.router.add_routes(share_views.routes)
    share_docs.document_routes(app[API_DOCS])
