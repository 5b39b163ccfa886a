"""Gate tickets area: shared app keys and the change-notification seam used by the kiosk protocol."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from server.tickets.service import KeyRing, ensure_signing_key, load_keys
from server.web import DB

#: The Ed25519 signing keys (private: server only) and their public halves for kiosks.
KEYS = web.AppKey("keys", KeyRing)

TicketListener = Callable[[list[int]], Awaitable[None]]
#: Called with ticket ids after a change kiosks must learn at once (print, delete, use).
TICKET_LISTENERS = web.AppKey("ticket_listeners", list)


async def keys_ctx(app: web.Application) -> AsyncIterator[None]:
    await app[DB].write(ensure_signing_key)
    app[KEYS] = await app[DB].read(load_keys)
    yield


async def reload_keys(app: web.Application) -> None:
    app[KEYS] = await app[DB].read(load_keys)


async def tickets_changed(app: web.Application, ticket_ids: list[int]) -> None:
    for listener in app[TICKET_LISTENERS]:
        await listener(ticket_ids)


def setup(app: web.Application) -> None:
    app[TICKET_LISTENERS] = []
    app.cleanup_ctx.append(keys_ctx)
