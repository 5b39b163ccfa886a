"""Ticket pages: the customer's Transactions → Tickets, operations' catalogue, billing's purchases."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from gate_core.codes import human_readable, mask_code
from server.accounts.views import page
from server.forms import ValidationFailed
from server.i18n import N_, Msg
from server.menu import MenuEntry
from server.tickets import KEYS, keys_for, tickets_changed
from server.tickets import service as svc
from server.tickets.pdf import PrintableTicket, render_ticket_pdf
from server.timefmt import timestamp
from server.web import CONFIG, CUSTOMER_ROLES, DB, ApiError, Principal, lang_of, not_found, path_id, require

routes = web.RouteTableDef()
CUSTOMER = CUSTOMER_ROLES

#: The menu entries of the gate-ticket pages (added by ``server.tickets.setup``).
MENU_ENTRIES = (
    MenuEntry(N_("Tickets"), "/tickets", CUSTOMER),
    MenuEntry(N_("Itineraries"), "/ops/itineraries", ("operations", "admin")),
    MenuEntry(N_("Services"), "/ops/services", ("operations", "admin")),
    MenuEntry(N_("Purchases"), "/billing/purchases", ("billing_clerk", "admin")),
)


def _int(value: str | None, default: int = 0) -> int:
    try:
        number = int(value or default)
    except ValueError:
        return default
    return number if 0 <= number < 2**62 else default


def ticket_error(exc: svc.TicketError) -> ApiError:
    return ApiError(404 if exc.code == "not_found" else 409, exc.code, exc.message)


# --- customer: balance, generation, lists -----------------------------------------------------


@routes.get("/tickets")
async def tickets_home(request: web.Request) -> web.Response:
    principal = require(request, *CUSTOMER)
    db = request.app[DB]
    balance = await db.read(svc.balance, principal.company_id)
    purchases = [p for p in await db.read(svc.list_purchases, principal.company_id) if p["status"] == "confirmed"]
    summaries = await db.read(svc.itinerary_summaries, principal.company_id)
    return page(
        request,
        "tickets/index.html",
        {"balance": balance, "purchases": purchases, "summaries": summaries, "errors": {}},
    )


async def _generate_context(request: web.Request, principal: Principal, quantity: int | None) -> dict[str, Any]:
    db = request.app[DB]
    return {
        "quantity": quantity,
        "balance": await db.read(svc.balance, principal.company_id),
        "itineraries": await db.read(svc.list_itineraries, open_at=datetime.now(UTC)),
        "services": await db.read(svc.list_services),
    }


@routes.get("/tickets/generate")
async def generate_form(request: web.Request) -> web.Response:
    principal = require(request, *CUSTOMER)
    ctx = await _generate_context(request, principal, None)
    from server import forms

    errors = forms.FieldErrors()
    quantity = forms.integer(request.query, "quantity", errors, minimum=1, maximum=svc.MAX_GENERATE)
    if quantity is not None and quantity > ctx["balance"].available:
        errors.add(
            "quantity", Msg("You can generate at most %(n)s tickets (your balance).", {"n": ctx["balance"].available})
        )
    if errors:
        db = request.app[DB]
        summaries = await db.read(svc.itinerary_summaries, principal.company_id)
        purchases = [p for p in await db.read(svc.list_purchases, principal.company_id) if p["status"] == "confirmed"]
        return page(
            request,
            "tickets/index.html",
            {
                "balance": ctx["balance"],
                "purchases": purchases,
                "summaries": summaries,
                "errors": errors,
                "quantity_value": request.query.get("quantity", "")[:10],
            },
            400,
        )
    ctx["quantity"] = quantity
    return page(request, "tickets/generate.html", {**ctx, "values": {}, "errors": {}})


@routes.post("/tickets/generate")
async def generate_submit(request: web.Request) -> web.Response:
    principal = require(request, *CUSTOMER)
    form = await request.post()
    db = request.app[DB]
    service_ids = [str(v) for v in form.getall("services", [])]
    try:
        values = svc.validate_generation(form, service_ids)
        result = await db.write(
            svc.generate_tickets, request.app[KEYS], principal.company_id, principal.user_id, values, datetime.now(UTC)
        )
    except ValidationFailed as exc:
        ctx = await _generate_context(request, principal, _int(str(form.get("quantity", ""))) or None)
        return page(
            request,
            "tickets/generate.html",
            {
                **ctx,
                "errors": exc.errors,
                "values": {"itinerary_id": str(form.get("itinerary_id", "")), "services": service_ids},
            },
            400,
        )
    return page(request, "tickets/done.html", {"result": result})


@routes.get(r"/tickets/itinerary/{itinerary_id:\d+}")
async def itinerary_tickets(request: web.Request) -> web.Response:
    principal = require(request, *CUSTOMER)
    db = request.app[DB]
    itinerary_id = path_id(request, "itinerary_id")
    generations = await db.read(svc.generations_for, principal.company_id, itinerary_id)
    itinerary = await db.read(svc.get_itinerary, itinerary_id)
    if itinerary is None or not generations:
        raise not_found()
    status = request.query.get("status", "all")
    if status not in ("all", "printed", "not_printed", "used"):
        status = "all"
    after = _int(request.query.get("after"))
    rows = await db.read(
        svc.tickets_page, principal.company_id, itinerary_id, status=status, after_id=after, limit=svc.PAGE_SIZE + 1
    )
    has_more = len(rows) > svc.PAGE_SIZE
    rows = rows[: svc.PAGE_SIZE]
    keys = await keys_for(request.app, rows)
    lang = lang_of(request)
    for row in rows:
        code = svc.code_for(keys, row)
        row["display_code"] = human_readable(row["short_code"]) if row["printed_at"] else mask_code(code)
    for generation in generations:
        generation["service_names"] = await db.read(svc.service_names, json.loads(generation["services"]), lang)
    return page(
        request,
        "tickets/itinerary.html",
        {
            "itinerary": itinerary,
            "generations": generations,
            "tickets": rows,
            "status": status,
            "next_after": rows[-1]["id"] if has_more and rows else None,
            "after": after,
        },
    )


async def printable(request: web.Request, principal: Principal, ticket: dict[str, Any]) -> PrintableTicket:
    """What the PDF shows of a ticket just marked printed (``ticket`` as ``print_ticket`` returns it)."""
    db = request.app[DB]
    zone = request.app[CONFIG].zone
    itinerary = await db.read(svc.get_itinerary, ticket["itinerary_id"])
    assert itinerary is not None  # itineraries are deactivated, never removed
    names = await db.read(svc.service_names, json.loads(ticket["services"]), lang_of(request))
    tax_id = await db.read(
        lambda d: d.execute("SELECT tax_id FROM companies WHERE id = ?", (principal.company_id,)).fetchone()[0]
    )
    return PrintableTicket(
        ticket_id=ticket["id"],
        code=ticket["code"],
        short_code=ticket["short_code"],
        company=principal.company_name or "",
        tax_id=tax_id,
        vessel=itinerary["vessel"],
        voyage=itinerary["voyage"],
        eta=timestamp(itinerary["eta"], zone),
        valid_from=timestamp(itinerary["valid_from"], zone),
        valid_until=timestamp(itinerary["valid_until"], zone),
        services=names,
        transaction_no=ticket["transaction_no"],
    )


async def print_and_render(request: web.Request, principal: Principal, ticket_id: int) -> web.Response:
    """Mark the ticket printed and answer its PDF; shared by the page and the API."""
    try:
        ticket = await request.app[DB].write(
            svc.print_ticket,
            principal.company_id,
            ticket_id,
            principal.user_id,
            request.app[KEYS],
            now=datetime.now(UTC),
        )
    except svc.TicketError as exc:
        raise ticket_error(exc) from None
    if ticket["first_print"]:
        await tickets_changed(request.app, [ticket_id])
    pdf = render_ticket_pdf(await printable(request, principal, ticket), lang_of(request))
    return web.Response(
        body=pdf,
        content_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="ticket-{ticket_id}.pdf"', "Cache-Control": "no-store"},
    )


@routes.post(r"/tickets/{ticket_id:\d+}/print")
async def print_ticket(request: web.Request) -> web.Response:
    principal = require(request, *CUSTOMER)
    return await print_and_render(request, principal, path_id(request, "ticket_id"))


@routes.get(r"/tickets/{ticket_id:\d+}/delete")
async def delete_confirm(request: web.Request) -> web.Response:
    principal = require(request, *CUSTOMER)
    ticket = await request.app[DB].read(svc.get_ticket, principal.company_id, path_id(request, "ticket_id"))
    if ticket is None or ticket["deleted_at"]:
        raise not_found()
    if ticket["used_at"]:
        raise ApiError(
            409, "used", Msg("This ticket was already used at the gate; it can no longer be printed or deleted.")
        )
    return page(request, "tickets/delete.html", {"ticket": ticket})


@routes.post(r"/tickets/{ticket_id:\d+}/delete")
async def delete_ticket(request: web.Request) -> web.Response:
    principal = require(request, *CUSTOMER)
    ticket_id = path_id(request, "ticket_id")
    try:
        ticket = await request.app[DB].write(
            svc.delete_ticket, principal.company_id, ticket_id, principal.user_id, now=datetime.now(UTC)
        )
    except svc.TicketError as exc:
        raise ticket_error(exc) from None
    await tickets_changed(request.app, [ticket_id])
    raise web.HTTPFound(f"/tickets/itinerary/{ticket['itinerary_id']}?deleted={ticket_id}")
