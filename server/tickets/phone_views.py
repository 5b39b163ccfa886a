"""A gate ticket on the customer's phone: its QR full-screen at the kiosk, and the same facts for the app.

The QR is drawn on the server as SVG from the very code text the printed ticket carries, so the page
needs no script to show it and works offline once the app's service worker has kept it (the page names
its session's cache in the ``X-Portgate-Cache`` header; see ``server.pwa``). A deleted or used ticket
shows "Deleted" / "Used" instead of its QR the next time the phone loads the page online.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from markupsafe import Markup

from server.flash import FLASH_COOKIE, render_with_flash
from server.i18n import N_
from server.openapi import NULLABLE_S, ApiDocs, I, S, obj, path_param
from server.pwa import CACHE_HEADER, request_cache_key
from server.tickets import KEYS, share
from server.tickets import service as svc
from server.tickets.pdf import qr_symbol
from server.tickets.printing import display_code, print_one
from server.web import CUSTOMER_ROLES, DB, not_found, path_id, require

routes = web.RouteTableDef()

#: The header of an open page's own check of its ticket (``static/app/ticket.js``): answered the ticket's
#: state alone, so it reveals no code, and a driver's link does not count it as an open.
CHECK_HEADER = "X-Portgate-Check"

#: What a ticket is, as the phone shows it: only a ``valid`` one shows its QR.
STATUS_LABELS = {
    "valid": N_("Valid at the gate"),
    "not_printed": N_("Not printed"),
    "used": N_("Used"),
    "deleted": N_("Deleted"),
    "expired": N_("Gate window over"),
}


def phone_status(ticket: dict[str, Any], now: datetime) -> str:
    """``valid``, ``not_printed``, ``used``, ``deleted`` or ``expired`` (the itinerary's window is over)."""
    if ticket["deleted_at"]:
        return "deleted"
    if ticket["used_at"]:
        return "used"
    if ticket["printed_at"] is None:
        return "not_printed"
    if svc.window_over(ticket["valid_until"], now):
        return "expired"
    return "valid"


def qr_svg(code: str) -> Markup:
    """The QR of ``code`` as inline SVG with its quiet zone, black on white, sized by its container."""
    qr = qr_symbol(code)  # the printed ticket's symbol: its decimal form, the biggest modules on the screen
    svg = qr.svg_inline(border=4, omitsize=True, light="#fff", dark="#000", svgclass="qr", lineclass=None)
    return Markup(svg)  # noqa: S704 - segno's own markup of a code we issued


async def ticket_code(request: web.Request, ticket: dict[str, Any]) -> str:
    """The full signed code of a ticket (the app's key ring, or the database's when a rotation is newer)."""
    keys = request.app[KEYS]
    if ticket["key_id"] not in keys.signing:
        keys = await request.app[DB].read(svc.load_keys)
    return svc.code_for(keys, ticket)


async def screen_context(request: web.Request, ticket: dict[str, Any]) -> dict[str, Any]:
    """What the full-screen ticket shows: the QR and the grouped short code only while it is valid."""
    status = phone_status(ticket, datetime.now(UTC))
    valid = status == "valid"
    return {
        "ticket": ticket,
        "status": status,
        "status_label": STATUS_LABELS[status],
        "qr": qr_svg(await ticket_code(request, ticket)) if valid else None,
        "short_code": _in_pairs(display_code(ticket)) if valid else None,
    }


def _in_pairs(grouped: str) -> list[str]:
    """The short code's blocks of five two by two: a phone shows them as two large lines, never 3 + 1."""
    blocks = grouped.split()
    return [" ".join(blocks[i : i + 2]) for i in range(0, len(blocks), 2)]


def is_check(request: web.Request) -> bool:
    """Whether an open page asks if its ticket changed (``ticket.js``), rather than a person opening it."""
    return request.headers.get(CHECK_HEADER) == "1"


def state_answer(status: str) -> web.Response:
    """The answer to a page's check: the state its ``#ticket`` shows (``data-status``), and nothing else."""
    return web.json_response({"status": status}, headers={"Cache-Control": "no-store"})


def cacheable(request: web.Request, response: web.Response) -> web.Response:
    """Let the app's service worker keep this page offline, in the cache of this session only."""
    response.headers[CACHE_HEADER] = request_cache_key(request)
    return response


@routes.get(r"/tickets/{ticket_id:\d+}/phone")
async def phone_ticket(request: web.Request) -> web.Response:
    """The ticket full-screen (a deleted one says so: the phone may hold an older copy to replace)."""
    principal = require(request, *CUSTOMER_ROLES)
    ticket_id = path_id(request, "ticket_id")
    ticket = await request.app[DB].read(share.ticket_for_phone, principal.company_id, ticket_id)
    if ticket is None:
        raise not_found()
    if is_check(request):
        return state_answer(phone_status(ticket, datetime.now(UTC)))
    context = await screen_context(request, ticket)
    context.update(owner=True, links=await request.app[DB].read(share.links_of, principal.company_id, ticket_id))
    response = render_with_flash(request, "app/ticket.html", context)
    # A page with a one-time message (a new link's address among them) is not kept for offline use, where
    # the phone would show it again: the worker keeps only pages that name their cache.
    return response if FLASH_COOKIE in request.cookies else cacheable(request, response)


@routes.post(r"/tickets/{ticket_id:\d+}/phone")
async def show_on_phone(request: web.Request) -> web.Response:
    """Reveal a ticket not printed yet on the phone: as printing does, it is marked printed for the kiosks."""
    principal = require(request, *CUSTOMER_ROLES)
    ticket_id = path_id(request, "ticket_id")
    await print_one(request, principal, ticket_id)
    raise web.HTTPSeeOther(f"/tickets/{ticket_id}/phone")


@routes.get(r"/api/v1/tickets/{ticket_id:\d+}/phone")
async def api_phone_ticket(request: web.Request) -> web.Response:
    """The ticket as the app shows it on the phone; a deleted one answers ``deleted`` (not 404) so the app
    replaces its offline copy."""
    principal = require(request, *CUSTOMER_ROLES)
    ticket = await request.app[DB].read(share.ticket_for_phone, principal.company_id, path_id(request, "ticket_id"))
    if ticket is None:
        raise not_found()
    context = await screen_context(request, ticket)
    valid = context["status"] == "valid"
    return web.json_response(
        {
            "id": ticket["id"],
            "status": context["status"],
            "code": await ticket_code(request, ticket) if valid else None,
            "short_code": ticket["short_code"] if valid else None,
            "display_code": display_code(ticket),
            "printed_at": ticket["printed_at"],
            "used_at": ticket["used_at"],
            "deleted_at": ticket["deleted_at"],
            "itinerary": {k: ticket[k] for k in ("vessel", "voyage", "valid_from", "valid_until")}
            | {"id": ticket["itinerary_id"]},
        }
    )


PHONE_TICKET = obj(
    id=I,
    status={"enum": list(STATUS_LABELS), "description": "only a valid ticket carries its codes"},
    code={**NULLABLE_S, "description": "the full code the QR carries; null unless valid"},
    short_code={**NULLABLE_S, "description": "the 20 digits to type by hand; null unless valid"},
    display_code={"type": "string", "description": "the short code in blocks of five, masked until printed"},
    printed_at=NULLABLE_S,
    used_at=NULLABLE_S,
    deleted_at=NULLABLE_S,
    itinerary=obj(id=I, vessel=S, voyage=S, valid_from=S, valid_until=S),
)


def document_routes(docs: ApiDocs) -> None:
    docs.add(
        "/api/v1/tickets/{ticket_id}/phone",
        "get",
        "A ticket as the phone shows it at the kiosk: status, the QR's code and the short code while valid, "
        "and the itinerary's gate window; a deleted ticket answers status deleted",
        tag="tickets",
        errors=(404,),
        response=PHONE_TICKET,
        params=[path_param("ticket_id")],
    )
