"""Driver share links on the web and the API: a customer creates and revokes them on the ticket's phone
page (``/tickets/{id}/phone``) or through the API; a driver opens one at ``/t/{token}`` without signing in.

Only users of the ticket's company reach a ticket's links (``require`` gives the company, the service
filters by it); the driver's page shows that one ticket and nothing else of the company.
"""

from __future__ import annotations

import time
import weakref
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from server.flash import redirect_with_flash
from server.i18n import Msg
from server.tickets import service as svc
from server.tickets import share, tickets_changed
from server.tickets.phone_views import cacheable, is_check, phone_status, screen_context, state_answer
from server.tickets.printing import ticket_error, write_ticket
from server.web import (
    CONFIG,
    CUSTOMER_ROLES,
    DB,
    ApiError,
    Principal,
    client_address,
    not_found,
    path_id,
    render_page,
    require,
)

routes = web.RouteTableDef()

#: What a driver reads when a link no longer opens its ticket.
DEAD_LINK_MESSAGES = {
    "revoked": Msg("The company that sent this link has revoked it."),
    "deleted": Msg("This ticket was deleted; it can no longer be used at the gate."),
    "expired": Msg("The gate window of this ticket is over; the link no longer opens it."),
}


def link_url(request: web.Request, token: str) -> str:
    """The address a driver opens (the public base address: it goes out by message)."""
    return f"{request.app[CONFIG].public_url}/t/{token}"


async def _create(request: web.Request, principal: Principal, ticket_id: int) -> tuple[dict[str, Any], str]:
    """A new link to the ticket (printing it first if needed: the kiosks learn that at once)."""
    link, token = await write_ticket(request, principal, share.create_link, ticket_id)
    if link.pop("first_print"):
        await tickets_changed(request.app, [ticket_id])
    return link, link_url(request, token)


async def _revoke(request: web.Request, principal: Principal) -> dict[str, Any]:
    ticket_id, link_id = path_id(request, "ticket_id"), path_id(request, "link_id")
    try:
        return await request.app[DB].write(
            share.revoke_link, principal.company_id, ticket_id, link_id, principal.user_id, now=datetime.now(UTC)
        )
    except svc.TicketError as exc:
        raise ticket_error(exc) from None


# --- the customer's pages --------------------------------------------------------------------


@routes.post(r"/tickets/{ticket_id:\d+}/share-links")
async def create_link(request: web.Request) -> web.Response:
    principal = require(request, *CUSTOMER_ROLES)
    ticket_id = path_id(request, "ticket_id")
    _link, url = await _create(request, principal, ticket_id)
    done = Msg("Link created. Send it to the driver: it opens only this ticket.")
    raise redirect_with_flash(request, f"/tickets/{ticket_id}/phone", done, share_url=url)


@routes.post(r"/tickets/{ticket_id:\d+}/share-links/{link_id:\d+}/revoke")
async def revoke_link(request: web.Request) -> web.Response:
    principal = require(request, *CUSTOMER_ROLES)
    link = await _revoke(request, principal)
    done = Msg("The link was revoked; it no longer opens the ticket.")
    raise redirect_with_flash(request, f"/tickets/{link['ticket_id']}/phone", done)


# --- the driver's page -----------------------------------------------------------------------

#: Made-up tokens one client address may try in a window before its link opens are refused for the rest
#: of it: a driver mistyping a link tries a few, a script guessing tokens thousands.
UNKNOWN_TOKENS_PER_ADDRESS = 30
UNKNOWN_TOKEN_WINDOW_MINUTES = 10
TOO_MANY_UNKNOWN = Msg(
    "Too many failed attempts from your address. Try again in %(minutes)s minutes.",
    {"minutes": UNKNOWN_TOKEN_WINDOW_MINUTES},
)


class UnknownTokens:
    """Unknown tokens tried per client address in the current window, in this process's memory: a count
    in the database would make every guess a write, which looking tokens up with a read avoids."""

    #: Addresses counted per window at most (memory stays bounded; a flood of addresses goes uncounted).
    MAX_ADDRESSES = 10_000
    _apps: weakref.WeakKeyDictionary[web.Application, UnknownTokens] = weakref.WeakKeyDictionary()

    def __init__(self) -> None:
        self._window = -1
        self._counts: dict[str, int] = {}

    @classmethod
    def of(cls, app: web.Application) -> UnknownTokens:
        """The app's own counter (each test's app, and each server process, counts apart)."""
        return cls._apps.setdefault(app, cls())

    def over(self, address: str, now: float) -> bool:
        return self._current(now).get(address, 0) >= UNKNOWN_TOKENS_PER_ADDRESS

    def count(self, address: str, now: float) -> None:
        counts = self._current(now)
        if address in counts or len(counts) < self.MAX_ADDRESSES:
            counts[address] = counts.get(address, 0) + 1

    def _current(self, now: float) -> dict[str, int]:
        window = int(now // (UNKNOWN_TOKEN_WINDOW_MINUTES * 60))
        if window != self._window:
            self._window, self._counts = window, {}
        return self._counts


@routes.get(r"/t/{token:[A-Za-z0-9_-]{16,64}}")
async def open_link(request: web.Request) -> web.Response:
    """The shared ticket for whoever holds the link; 404 for no link, 410 for a dead one, each a clear page.

    The token is looked up with a read; only a known link takes a write turn, to count and audit the open
    (the redeems wait for that single writer). An open page's check (``is_check``) is answered its state.
    """
    address, now = client_address(request), time.time()
    if UnknownTokens.of(request.app).over(address, now):
        raise ApiError(429, "too_many_requests", TOO_MANY_UNKNOWN)
    db, at = request.app[DB], datetime.fromtimestamp(now, UTC)
    found = await db.read(share.find_link, request.match_info["token"], now=at)
    if found is None:
        UnknownTokens.of(request.app).count(address, now)
        raise not_found()
    if is_check(request):
        return state_answer(found.dead or phone_status(found.ticket, at))
    opened = await db.write(share.open_link, found.link_id, address, now=at)
    if opened.dead:
        message = DEAD_LINK_MESSAGES[opened.dead]
        response = render_page(request, "app/link_dead.html", {"reason": opened.dead, "message": message}, 410)
    else:
        context = await screen_context(request, opened.ticket)
        response = render_page(request, "app/ticket.html", {**context, "owner": False, "links": [], "flash": None})
    response.headers["Referrer-Policy"] = "no-referrer"  # the address is the key: it never leaves in a Referer
    response.headers["X-Robots-Tag"] = "noindex"
    return cacheable(request, response)


# --- the API ---------------------------------------------------------------------------------


def _link_json(link: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "ticket_id", "created_at", "expires_at", "revoked_at", "open_count", "last_opened_at")
    return {key: link[key] for key in keys}


@routes.post(r"/api/v1/tickets/{ticket_id:\d+}/share-links")
async def api_create_link(request: web.Request) -> web.Response:
    principal = require(request, *CUSTOMER_ROLES)
    link, url = await _create(request, principal, path_id(request, "ticket_id"))
    return web.json_response({**_link_json(link), "url": url}, status=201)


@routes.get(r"/api/v1/tickets/{ticket_id:\d+}/share-links")
async def api_links(request: web.Request) -> web.Response:
    principal = require(request, *CUSTOMER_ROLES)
    ticket_id = path_id(request, "ticket_id")
    db = request.app[DB]
    if await db.read(share.ticket_for_phone, principal.company_id, ticket_id) is None:
        raise not_found()
    links = await db.read(share.links_of, principal.company_id, ticket_id)
    return web.json_response({"links": [_link_json(link) for link in links]})


@routes.delete(r"/api/v1/tickets/{ticket_id:\d+}/share-links/{link_id:\d+}")
async def api_revoke_link(request: web.Request) -> web.Response:
    principal = require(request, *CUSTOMER_ROLES)
    return web.json_response(_link_json(await _revoke(request, principal)))
