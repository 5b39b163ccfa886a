"""Ticket pages: the customer's Transactions → Tickets, operations' catalogue, billing's purchases."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any

from aiohttp import web

from server import forms
from server.accounts.common import page
from server.flash import redirect_with_flash, render_with_flash
from server.forms import ValidationFailed, parse_id
from server.i18n import N_, Msg
from server.menu import MenuEntry
from server.tickets import KEYS, customer_lists, printing, tickets_changed
from server.tickets import service as svc
from server.tickets.paging import Keyset
from server.tickets.pdf import PER_SHEET
from server.tickets.printing import ticket_error
from server.tickets.staff_pages import ListQuery
from server.timefmt import date_time
from server.web import CONFIG, CUSTOMER_ROLES, DB, ApiError, Principal, lang_of, not_found, path_id, require

routes = web.RouteTableDef()
CUSTOMER = CUSTOMER_ROLES

#: The menu entries of the gate-ticket pages (added by ``server.tickets.setup``).
MENU_ENTRIES = (
    MenuEntry(N_("Gate tickets"), "/tickets", CUSTOMER),
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


# --- customer: balance, generation, lists -----------------------------------------------------


@routes.get("/tickets")
async def tickets_home(request: web.Request) -> web.Response:
    principal = require(request, *CUSTOMER)
    return page(request, "tickets/index.html", await _home_context(request, principal))


async def _home_context(request: web.Request, principal: Principal, **extra: Any) -> dict[str, Any]:
    """The balance, one page of confirmed purchases (``?after`` / ``?before``) and the generated tickets."""
    db = request.app[DB]
    return {
        "balance": await db.read(svc.balance, principal.company_id),
        "purchases": await db.read(customer_lists.confirmed_purchases, principal.company_id, Keyset.of(request.query)),
        "list_query": ListQuery(),
        "summaries": await db.read(svc.itinerary_summaries, principal.company_id),
        "errors": {},
        **extra,
    }


def _itinerary_search(query: Mapping[str, str]) -> str:
    return " ".join(query.get("itinerary_q", "").split())[:60]


async def _generate_context(
    request: web.Request, principal: Principal, quantity: int | None, chosen: str = ""
) -> dict[str, Any]:
    """The generate form: the itineraries matching ``?itinerary_q`` (the one ``chosen`` always among them)."""
    db, now, search = request.app[DB], datetime.now(UTC), _itinerary_search(request.query)
    itineraries = await db.read(customer_lists.open_itineraries, now, search)
    chosen_id = parse_id(chosen)
    if chosen_id and all(i["id"] != chosen_id for i in itineraries):
        itineraries = await db.read(customer_lists.open_itineraries_by_id, [chosen_id], now) + itineraries
    return {
        "quantity": quantity,
        "balance": await db.read(svc.balance, principal.company_id),
        "itineraries": itineraries,
        "itinerary_q": search,
        "services": await db.read(svc.list_services),
    }


@routes.get("/tickets/generate")
async def generate_form(request: web.Request) -> web.Response:
    principal = require(request, *CUSTOMER)
    ctx = await _generate_context(request, principal, None)
    errors = forms.FieldErrors()
    quantity = forms.integer(request.query, "quantity", errors, minimum=1, maximum=svc.MAX_GENERATE)
    if quantity is not None and quantity > ctx["balance"].available:
        errors.add(
            "quantity", Msg("You can generate at most %(n)s tickets (your balance).", {"n": ctx["balance"].available})
        )
    if errors:
        context = await _home_context(request, principal, errors=errors)
        context["quantity_value"] = request.query.get("quantity", "")[:10]
        return page(request, "tickets/index.html", context, 400)
    ctx["quantity"] = quantity
    return page(request, "tickets/generate.html", {**ctx, "values": {}, "errors": {}})


@routes.get("/tickets/itineraries")
async def itinerary_choices(request: web.Request) -> web.Response:
    """The generate form's type-ahead: open itineraries whose vessel or voyage starts with ``?q``."""
    require(request, *CUSTOMER)
    search = " ".join(request.query.get("q", "").split())[:60]
    rows = await request.app[DB].read(customer_lists.open_itineraries, datetime.now(UTC), search)
    lang, zone = lang_of(request), request.app[CONFIG].zone
    return web.json_response({"itineraries": [{"id": r["id"], "label": _itinerary_label(r, lang, zone)} for r in rows]})


def _itinerary_label(itinerary: Mapping[str, Any], lang: str, zone: tzinfo) -> str:
    """How the generate form names an itinerary (as its template does)."""
    return f"{itinerary['vessel']} / {itinerary['voyage']} — ETA {date_time(itinerary['eta'], lang, zone)}"


@routes.post("/tickets/generate")
async def generate_submit(request: web.Request) -> web.Response:
    """Generate, then answer a redirect to the result: Back and Refresh never generate twice."""
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
        chosen = str(form.get("itinerary_id", ""))
        ctx = await _generate_context(request, principal, _int(str(form.get("quantity", ""))) or None, chosen)
        ctx.update(errors=exc.errors, values={"itinerary_id": chosen, "services": service_ids})
        return page(request, "tickets/generate.html", ctx, 400)
    done = Msg("The process was completed successfully.")
    raise redirect_with_flash(request, f"/tickets/generations/{result['generation_id']}", done)


@routes.get(r"/tickets/generations/{generation_id:\d+}")
async def generation_done(request: web.Request) -> web.Response:
    """A generation's transaction number and tickets, the page the generate form leads to."""
    principal = require(request, *CUSTOMER)
    generation = await request.app[DB].read(
        customer_lists.generation_of, principal.company_id, path_id(request, "generation_id")
    )
    if generation is None:
        raise not_found()
    return render_with_flash(request, "tickets/done.html", {"result": generation})


async def _itinerary_context(request: web.Request, principal: Principal, itinerary_id: int) -> dict[str, Any]:
    """The itinerary page: its data, generations and one page of the company's tickets (``?status``, ``?after``)."""
    db = request.app[DB]
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
    for row in rows:
        row["display_code"] = printing.display_code(row)
    for generation in generations:
        generation["service_names"] = await db.read(
            svc.service_names, json.loads(generation["services"]), lang_of(request)
        )
    return {
        "itinerary": itinerary,
        "generations": generations,
        "tickets": rows,
        "status": status,
        "next_after": rows[-1]["id"] if has_more and rows else None,
        "after": after,
        "per_sheet_choices": PER_SHEET,
        "per_sheet": 1,
        "errors": {},
    }


@routes.get(r"/tickets/itinerary/{itinerary_id:\d+}")
async def itinerary_tickets(request: web.Request) -> web.Response:
    principal = require(request, *CUSTOMER)
    ctx = await _itinerary_context(request, principal, path_id(request, "itinerary_id"))
    return page(request, "tickets/itinerary.html", ctx)


@routes.post(r"/tickets/itinerary/{itinerary_id:\d+}/print")
async def print_many(request: web.Request) -> web.Response:
    """The itinerary page's print form: the ticked tickets, or every one not printed yet, as one PDF."""
    principal = require(request, *CUSTOMER)
    itinerary_id = path_id(request, "itinerary_id")
    form = await request.post()
    wanted = [str(v) for v in form.getall("ticket", [])]
    if form.get("which") == "not_printed":
        wanted = [
            str(i) for i in await request.app[DB].read(printing.unprinted_ids, principal.company_id, itinerary_id)
        ]
    try:
        ticket_ids, per_sheet = printing.validate_print(wanted, form.get("per_sheet"))
    except ValidationFailed as exc:
        ctx = await _itinerary_context(request, principal, itinerary_id)
        ctx.update(errors=exc.errors, per_sheet=_int(str(form.get("per_sheet", "")), 1))
        if form.get("which") == "not_printed" and "ticket_ids" in exc.errors:
            ctx["errors"] = {"ticket_ids": Msg("Every ticket of this itinerary is printed already.")}
        return page(request, "tickets/itinerary.html", ctx, 400)
    return await printing.print_as_pdf(request, principal, ticket_ids, per_sheet, lang_of(request))


async def print_and_render(request: web.Request, principal: Principal, ticket_id: int) -> web.Response:
    """Mark one ticket printed and answer its PDF; shared by the page and the API."""
    ticket = await printing.print_one(request, principal, ticket_id)
    return await printing.pdf_response(request, principal, [ticket], 1, lang_of(request))


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
