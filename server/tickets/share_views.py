"""Driver share links on the web and the API: a customer creates and revokes them on the ticket's phone
page (``/tickets/{id}/phone``) or through the API; a driver opens one at ``/t/{token}`` without signing in.

Only users of the ticket's company reach a ticket's links (``require`` gives the company, the service
filters by it); the driver's page shows that one ticket and nothing else of the company.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from server.flash import redirect_with_flash
from server.i18n import Msg
from server.tickets import KEYS, share, tickets_changed
from server.tickets import service as svc
from server.tickets.phone_views import cacheable, screen_context
from server.tickets.printing import ticket_error
from server.web import (
    CONFIG,
    CUSTOMER_ROLES,
    DB,
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
    try:
        link, token = await request.app[DB].write(
            share.create_link,
            principal.company_id,
            ticket_id,
            principal.user_id,
            request.app[KEYS],
            now=datetime.now(UTC),
        )
    except svc.TicketError as exc:
        raise ticket_error(exc) from None
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


@routes.get(r"/t/{token:[A-Za-z0-9_-]{16,64}}")
async def open_link(request: web.Request) -> web.Response:
    """The shared ticket for whoever holds the link; 404 for no link, 410 for a dead one, each a clear page."""
    opened = await request.app[DB].write(
        share.open_link, request.match_info["token"], client_address(request), now=datetime.now(UTC)
    )
    if opened is None:
        raise not_found()
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
