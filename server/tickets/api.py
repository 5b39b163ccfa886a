"""Customer JSON API for gate tickets (``/api/v1/tickets``, ``/api/v1/itineraries``, ``/api/v1/services``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from server.forms import MAX_ID, REQUIRED
from server.i18n import Msg
from server.openapi import NULLABLE_I, NULLABLE_S, ApiDocs, B, I, S, obj, query_param
from server.tickets import KEYS, customer_lists, printing, tickets_changed
from server.tickets import service as svc
from server.tickets.paging import MAX_PAGE_SIZE
from server.tickets.pdf import PER_SHEET
from server.tickets.printing import print_one
from server.tickets.views import CUSTOMER, _int, print_and_render, ticket_error
from server.web import DB, ApiError, int_param, json_body, lang_of, not_found, path_id, require

routes = web.RouteTableDef()


def _ticket_json(row: dict[str, Any], *, reveal: bool = False) -> dict[str, Any]:
    """A ticket as the API answers it; ``reveal`` (the print answer) adds its codes."""
    return {
        "id": row["id"],
        "itinerary_id": row["itinerary_id"],
        "printed": row["printed_at"] is not None,
        "printed_at": row["printed_at"],
        "print_count": row["print_count"],
        "used_at": row["used_at"],
        "code": row["code"] if reveal else None,
        "display_code": printing.display_code(row),
        "short_code": row["short_code"] if reveal else None,
    }


def _json_ids(body: dict[str, Any], name: str) -> list[Any]:
    """The array of ids under ``name`` as ``forms.id_choices`` reads it: empty when absent, and an entry it
    refuses when the value is anything but a list of integers (``"1,2"``, ``[true]``, ``[1.5]``)."""
    value = body.get(name)
    if not isinstance(value, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in value):
        return [] if value in (None, []) else ["x"]
    return value


@routes.get("/api/v1/tickets/balance")
async def api_balance(request: web.Request) -> web.Response:
    p = require(request, *CUSTOMER)
    b = await request.app[DB].read(svc.balance, p.company_id)
    return web.json_response({"purchased": b.confirmed, "generated": b.active_tickets, "available": b.available})


@routes.get("/api/v1/itineraries")
async def api_itineraries(request: web.Request) -> web.Response:
    """A page of the open itineraries, soonest first, those whose vessel or voyage starts with ``?q``."""
    require(request)
    db = request.app[DB]
    # The default page is the old whole answer's cap, so a client that never pages sees what it saw before.
    limit = int_param(request, "limit", MAX_PAGE_SIZE, MAX_PAGE_SIZE, minimum=1)
    after = int_param(request, "after", 0, MAX_ID, minimum=1) if request.query.get("after") else None
    if after and await db.read(svc.get_itinerary, after) is None:
        raise ApiError(400, "invalid", Msg("Some fields are not valid."), {"after": Msg("Not found.")})
    search = customer_lists.itinerary_search(request.query.get("q", ""))
    rows = await db.read(customer_lists.open_itineraries, datetime.now(UTC), search, limit + 1, after=after)
    keys = ("id", "vessel", "voyage", "eta", "etd", "valid_from", "valid_until", "berth")
    return web.json_response(
        {
            "itineraries": [{k: r[k] for k in keys} for r in rows[:limit]],
            "next_after": rows[limit - 1]["id"] if len(rows) > limit else None,
        }
    )


@routes.get("/api/v1/services")
async def api_services(request: web.Request) -> web.Response:
    require(request)
    rows = await request.app[DB].read(svc.list_services)
    lang = lang_of(request)
    return web.json_response(
        {
            "services": [
                {"id": r["id"], "code": r["code"], "name": r["name_en"] if lang == "en" else r["name_es"]} for r in rows
            ]
        }
    )


@routes.post("/api/v1/tickets/generate")
async def api_generate(request: web.Request) -> web.Response:
    p = require(request, *CUSTOMER)
    body = await json_body(request)
    values = svc.validate_generation(body, [str(s) for s in _json_ids(body, "services")])
    result = await request.app[DB].write(
        svc.generate_tickets, request.app[KEYS], p.company_id, p.user_id, values, datetime.now(UTC)
    )
    return web.json_response(
        {
            "transaction_no": result["transaction_no"],
            "quantity": result["quantity"],
            "itinerary_id": result["itinerary"]["id"],
        },
        status=201,
    )


@routes.get("/api/v1/tickets/itineraries")
async def api_summaries(request: web.Request) -> web.Response:
    p = require(request, *CUSTOMER)
    rows = await request.app[DB].read(svc.itinerary_summaries, p.company_id)
    return web.json_response({"itineraries": rows})


@routes.get("/api/v1/tickets")
async def api_list(request: web.Request) -> web.Response:
    p = require(request, *CUSTOMER)
    itinerary_id = _int(request.query.get("itinerary_id"))
    status = request.query.get("status", "all")
    if not itinerary_id:
        raise ApiError(400, "invalid", Msg("Some fields are not valid."), {"itinerary_id": REQUIRED})
    if status not in ("all", "printed", "not_printed", "used"):
        raise ApiError(
            400, "invalid", Msg("Some fields are not valid."), {"status": Msg("Use all, printed, not_printed or used.")}
        )
    limit = min(max(_int(request.query.get("limit"), svc.PAGE_SIZE), 1), 500)
    rows = await request.app[DB].read(
        svc.tickets_page,
        p.company_id,
        itinerary_id,
        status=status,
        after_id=_int(request.query.get("after")),
        limit=limit + 1,
    )
    return web.json_response(
        {
            "tickets": [_ticket_json(r) for r in rows[:limit]],
            "next_after": rows[limit - 1]["id"] if len(rows) > limit else None,
        }
    )


@routes.get(r"/api/v1/tickets/{ticket_id:\d+}")
async def api_ticket(request: web.Request) -> web.Response:
    p = require(request, *CUSTOMER)
    row = await request.app[DB].read(svc.get_ticket, p.company_id, path_id(request, "ticket_id"))
    if row is None or row["deleted_at"]:
        raise not_found()
    data = _ticket_json(row)
    data.update(transaction_no=row["transaction_no"], services=json.loads(row["services"]))
    return web.json_response(data)


@routes.post(r"/api/v1/tickets/{ticket_id:\d+}/print")
async def api_print(request: web.Request) -> web.Response:
    """Marks printed; answers the real code as JSON, or the PDF with ``?format=pdf``."""
    p = require(request, *CUSTOMER)
    ticket_id = path_id(request, "ticket_id")
    if request.query.get("format") == "pdf":
        return await print_and_render(request, p, ticket_id)
    row = await print_one(request, p, ticket_id)
    return web.json_response(_ticket_json(row, reveal=True))


@routes.post("/api/v1/tickets/print")
async def api_print_many(request: web.Request) -> web.Response:
    """Marks every ticket printed and answers them as one PDF; all or nothing."""
    p = require(request, *CUSTOMER)
    body = await json_body(request)
    ids, per_sheet = printing.validate_print(_json_ids(body, "ticket_ids"), body.get("per_sheet"))
    return await printing.print_as_pdf(request, p, ids, per_sheet, lang_of(request))


@routes.delete(r"/api/v1/tickets/{ticket_id:\d+}")
async def api_delete(request: web.Request) -> web.Response:
    p = require(request, *CUSTOMER)
    ticket_id = path_id(request, "ticket_id")
    try:
        await request.app[DB].write(svc.delete_ticket, p.company_id, ticket_id, p.user_id, now=datetime.now(UTC))
    except svc.TicketError as exc:
        raise ticket_error(exc) from None
    await tickets_changed(request.app, [ticket_id])
    b = await request.app[DB].read(svc.balance, p.company_id)
    return web.json_response({"deleted": ticket_id, "available": b.available})


#: The fields every itinerary answer shares.
ITINERARY = {"id": I, "vessel": S, "voyage": S, "eta": S, "etd": S, "valid_from": S, "valid_until": S}
TICKET = obj(
    id=I,
    itinerary_id=I,
    printed=B,
    printed_at=NULLABLE_S,
    print_count=I,
    used_at=NULLABLE_S,
    code={**NULLABLE_S, "description": "the real code: only in the print answer, null elsewhere"},
    display_code={
        "type": "string",
        "description": "the 20-digit short code in blocks of five once printed; before, the same code masked but "
        "for its last four digits (••••• ••••• ••••• •6789)",
    },
    short_code={**NULLABLE_S, "description": "only in the print answer, null elsewhere"},
)
TICKET_DETAIL = {
    **TICKET,
    "properties": {**TICKET["properties"], "transaction_no": S, "services": {"type": "array", "items": I}},
    "required": [*TICKET["required"], "transaction_no", "services"],
}


def document_routes(docs: ApiDocs) -> None:
    """Document the gate-ticket API: balance, itineraries, services, generate, list, print, delete."""
    _document_catalogue(docs)
    _document_generation(docs)
    _document_tickets(docs)


def _document_catalogue(docs: ApiDocs) -> None:
    docs.add(
        "/api/v1/tickets/balance",
        "get",
        "Purchased, generated and available tickets of the company",
        tag="tickets",
        errors=(403,),
        response=obj(purchased=I, generated=I, available=I),
    )
    docs.add(
        "/api/v1/itineraries",
        "get",
        "A page of the itineraries still open for generating tickets, soonest first (keyset: ?after=id)",
        tag="tickets",
        errors=(400,),
        params=[
            query_param("q", S, "only those whose vessel or voyage starts with this (case-insensitive)"),
            query_param("after", {**I, "minimum": 1}, "the next_after of the previous page"),
            query_param("limit", {**I, "minimum": 1, "maximum": MAX_PAGE_SIZE}, f"page size (default {MAX_PAGE_SIZE})"),
        ],
        response=obj(
            itineraries={"type": "array", "items": obj(**ITINERARY, berth=S)},
            next_after={**NULLABLE_I, "description": "send as ?after= for the next page; null on the last"},
        ),
    )
    docs.add(
        "/api/v1/services",
        "get",
        "The service catalogue",
        tag="tickets",
        errors=(),
        response=obj(services={"type": "array", "items": obj(id=I, code=S, name=S)}),
    )


def _document_generation(docs: ApiDocs) -> None:
    docs.add(
        "/api/v1/tickets/generate",
        "post",
        "Generate tickets from the balance for an itinerary and services",
        tag="tickets",
        status=201,
        errors=(400, 403),
        body=obj(quantity=I, itinerary_id=I, services={"type": "array", "items": I}),
        response=obj(transaction_no=S, quantity=I, itinerary_id=I),
    )
    docs.add(
        "/api/v1/tickets/itineraries",
        "get",
        "Per itinerary: the company's tickets, printed and used counts",
        tag="tickets",
        errors=(403,),
        response=obj(itineraries={"type": "array", "items": obj(**ITINERARY, total=I, printed=I, used=I)}),
    )


def _document_tickets(docs: ApiDocs) -> None:
    docs.add(
        "/api/v1/tickets",
        "get",
        "A page of the company's tickets of one itinerary (keyset: ?after=id)",
        tag="tickets",
        errors=(400, 403),
        params=[
            {"name": n, "in": "query", "required": n == "itinerary_id", "schema": s}
            for n, s in (("itinerary_id", I), ("status", S), ("after", I), ("limit", I))
        ],
        response=obj(
            tickets={"type": "array", "items": TICKET},
            next_after={**NULLABLE_I, "description": "send as ?after= for the next page; null on the last"},
        ),
    )
    docs.add(
        "/api/v1/tickets/{ticket_id}",
        "get",
        "One ticket (code masked until printed)",
        tag="tickets",
        errors=(404,),
        response=TICKET_DETAIL,
        params=[{"name": "ticket_id", "in": "path", "required": True, "schema": I}],
    )
    docs.add(
        "/api/v1/tickets/{ticket_id}/print",
        "post",
        "Print: marks printed and returns the real code (or ?format=pdf)",
        tag="tickets",
        errors=(404, 409),
        response=TICKET,
        params=[
            {"name": "ticket_id", "in": "path", "required": True, "schema": I},
            {"name": "format", "in": "query", "required": False, "schema": {"enum": ["json", "pdf"]}},
        ],
    )
    _document_batch_print(docs)
    docs.add(
        "/api/v1/tickets/{ticket_id}",
        "delete",
        "Delete an unused ticket; 1 returns to the balance",
        tag="tickets",
        errors=(404, 409),
        response=obj(deleted=I, available=I),
        params=[{"name": "ticket_id", "in": "path", "required": True, "schema": I}],
    )


def _document_batch_print(docs: ApiDocs) -> None:
    docs.add(
        "/api/v1/tickets/print",
        "post",
        "Print several tickets as one PDF (one per page, or 4 or 6 per A4 sheet); marks each printed. "
        "All or nothing: 404 `not_found` names the tickets that are not the company's or were deleted, "
        "409 `used` those already used at the gate; then nothing is marked",
        tag="tickets",
        errors=(400, 404, 409),
        body=obj(
            ticket_ids={
                "type": "array",
                "items": I,
                "minItems": 1,
                "maxItems": printing.MAX_PRINT,
                "description": "the tickets, printed in order of number",
            },
            per_sheet_={"enum": list(PER_SHEET), "description": "tickets per A4 sheet (default 1: one per page)"},
        ),
    )
    # The answer is the PDF itself, not JSON.
    docs.paths["/api/v1/tickets/print"]["post"]["responses"]["200"] = {
        "description": "The PDF, one ticket per page or per cell of the sheet",
        "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
    }
