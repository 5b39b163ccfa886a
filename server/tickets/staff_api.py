"""Staff JSON API of the tickets area, with the pages' authorisation: billing's purchases
(``/api/v1/billing/purchases``) and operations' catalogue (``/api/v1/ops/itineraries``, ``/api/v1/ops/services``).

Lists are newest first and page by id (``?after=`` / ``?before=``, answered as ``next_after`` /
``prev_before``); every write runs in one transaction and a refusal writes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from server.forms import ValidationFailed
from server.i18n import Msg
from server.tickets import catalogue as cat
from server.tickets import purchases as pur
from server.tickets import service as svc
from server.tickets.paging import MAX_PAGE_SIZE, PAGE_SIZE, Keyset, Page
from server.tickets.staff_api_docs import document_routes
from server.tickets.views import ticket_error
from server.web import CONFIG, DB, ApiError, json_body, not_found, path_id, require, terminal_now

__all__ = ["document_routes", "routes"]

routes = web.RouteTableDef()
BILLING = ("billing_clerk", "admin")
OPERATIONS = ("operations", "admin")
PURCHASES = "/api/v1/billing/purchases"


def purchase_json(row: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("id", "company_id", "company_name", "tax_id", "quantity", "reference", "status", "recorded_at")
    return {
        **{k: row[k] for k in keys},
        "bank_reference": row["bank_reference"] or None,
        "paid_on": row["paid_on"],
        "confirmed_by": row["confirmed_by_name"],
        "confirmed_at": row["confirmed_at"],
        "voided_at": row["voided_at"],
        "void_reason": row["void_reason"] or None,
    }


def itinerary_json(row: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("id", "vessel", "voyage", "eta", "etd", "valid_from", "valid_until", "berth")
    return {**{k: row[k] for k in keys}, "active": bool(row["active"])}


def service_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {**{k: row[k] for k in ("id", "code", "name_es", "name_en")}, "active": bool(row["active"])}


def _list_args(request: web.Request, statuses: tuple[str, ...]) -> dict[str, Any]:
    """The search, status, page start and size of a list call; an unknown status is a 400."""
    query = request.query
    status = query.get("status", "")
    if status and status not in statuses:
        choices = Msg("Use one of: %(choices)s.", {"choices": ", ".join(statuses)})
        raise ApiError(400, "invalid", Msg("Some fields are not valid."), {"status": choices})
    try:
        limit = min(max(int(query.get("limit", PAGE_SIZE)), 1), MAX_PAGE_SIZE)
    except ValueError:
        limit = PAGE_SIZE
    search = " ".join(query.get("q", "").split())[:100]
    return {"search": search, "status": status, "at": Keyset.of(query), "limit": limit}


def _page_json(page: Page, key: str, convert: Callable[[Mapping[str, Any]], dict[str, Any]]) -> web.Response:
    body = {key: [convert(r) for r in page.rows], "next_after": page.older, "prev_before": page.newer}
    return web.json_response(body)


async def _write(request: web.Request, fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn`` in a write transaction; a refused ticket action is its 404 or 409."""
    try:
        return await request.app[DB].write(fn, *args, now=datetime.now(UTC))
    except svc.TicketError as exc:
        raise ticket_error(exc) from None


async def _found(request: web.Request, get: Callable[..., dict[str, Any] | None], row_id: int) -> dict[str, Any]:
    row = await request.app[DB].read(get, row_id)
    if row is None:
        raise not_found()
    return row


# --- purchases --------------------------------------------------------------------------------


@routes.get(PURCHASES)
async def list_purchases(request: web.Request) -> web.Response:
    require(request, *BILLING)
    args = _list_args(request, pur.STATUSES)
    page = await request.app[DB].read(pur.purchases_page, **args)
    return _page_json(page, "purchases", purchase_json)


@routes.post(PURCHASES)
async def record_purchase(request: web.Request) -> web.Response:
    principal = require(request, *BILLING)
    values = pur.validate_new_purchase(await json_body(request), tax_id_field="tax_id")
    purchase_id = await _write(request, pur.record_new_purchase, values, principal.user_id)
    return web.json_response(purchase_json(await _found(request, pur.get_purchase, purchase_id)), status=201)


@routes.get(r"/api/v1/billing/purchases/{purchase_id:\d+}")
async def get_purchase(request: web.Request) -> web.Response:
    require(request, *BILLING)
    return web.json_response(purchase_json(await _found(request, pur.get_purchase, path_id(request, "purchase_id"))))


@routes.post(r"/api/v1/billing/purchases/{purchase_id:\d+}/confirm")
async def confirm_purchase(request: web.Request) -> web.Response:
    principal = require(request, *BILLING)
    payment = pur.validate_payment(await json_body(request), terminal_now(request.app).date())
    row = await _write(request, pur.confirm_payment, path_id(request, "purchase_id"), payment, principal.user_id)
    return web.json_response(purchase_json(row))


@routes.post(r"/api/v1/billing/purchases/{purchase_id:\d+}/void")
async def void_purchase(request: web.Request) -> web.Response:
    principal = require(request, *BILLING)
    reason = pur.validate_reason(await json_body(request))
    row = await _write(request, pur.void_purchase, path_id(request, "purchase_id"), reason, principal.user_id)
    return web.json_response(purchase_json(row))


@routes.post(r"/api/v1/billing/purchases/{purchase_id:\d+}/correct")
async def correct_purchase(request: web.Request) -> web.Response:
    principal = require(request, *BILLING)
    values = pur.validate_correction(await json_body(request))
    row = await _write(request, pur.correct_purchase, path_id(request, "purchase_id"), values, principal.user_id)
    return web.json_response(purchase_json(row))


@routes.post(f"{PURCHASES}/import")
async def import_purchases(request: web.Request) -> web.Response:
    """All or nothing: the CSV text in ``csv``; a bad row answers 400 naming its line and field."""
    principal = require(request, *BILLING)
    text = (await json_body(request)).get("csv")
    if not isinstance(text, str) or not text.strip():
        raise ApiError(400, "invalid", Msg("Some fields are not valid."), {"csv": Msg("Send the CSV text.")})
    try:
        rows = await asyncio.to_thread(pur.parse_purchases_csv, text)
        count = await _write(request, pur.save_purchases, rows, principal.user_id)
    except ValidationFailed as exc:  # the page's field is the file; here it is the body's csv
        raise ApiError(400, "invalid", Msg("Some fields are not valid."), {"csv": exc.errors["file"]}) from None
    return web.json_response({"imported": count}, status=201)


# --- itineraries and services -------------------------------------------------------------------


@routes.get("/api/v1/ops/itineraries")
async def list_itineraries(request: web.Request) -> web.Response:
    require(request, *OPERATIONS)
    page = await request.app[DB].read(cat.itineraries_page, **_list_args(request, cat.STATUSES))
    return _page_json(page, "itineraries", itinerary_json)


async def _save_itinerary(request: web.Request, itinerary_id: int | None) -> dict[str, Any]:
    principal = require(request, *OPERATIONS)
    values = svc.validate_itinerary(await json_body(request), request.app[CONFIG].zone)
    if itinerary_id is None:
        saved = await _write(request, svc.save_itinerary, values, principal.user_id)
    else:
        saved = await _write(request, cat.edit_itinerary, itinerary_id, values, principal.user_id)
    return itinerary_json(await _found(request, svc.get_itinerary, saved))


@routes.post("/api/v1/ops/itineraries")
async def add_itinerary(request: web.Request) -> web.Response:
    """Adds an itinerary, or updates the one with the same vessel and voyage."""
    return web.json_response(await _save_itinerary(request, None), status=201)


@routes.put(r"/api/v1/ops/itineraries/{itinerary_id:\d+}")
async def edit_itinerary(request: web.Request) -> web.Response:
    return web.json_response(await _save_itinerary(request, path_id(request, "itinerary_id")))


@routes.post(r"/api/v1/ops/itineraries/{itinerary_id:\d+}/close")
async def close_itinerary(request: web.Request) -> web.Response:
    principal = require(request, *OPERATIONS)
    row = await _write(request, cat.close_itinerary, path_id(request, "itinerary_id"), principal.user_id)
    return web.json_response(itinerary_json(row))


@routes.get("/api/v1/ops/services")
async def list_services(request: web.Request) -> web.Response:
    require(request, *OPERATIONS)
    page = await request.app[DB].read(cat.services_page, **_list_args(request, cat.STATUSES))
    return _page_json(page, "services", service_json)


@routes.post("/api/v1/ops/services")
async def add_service(request: web.Request) -> web.Response:
    """Adds a service, or updates (and reopens) the one with the same code."""
    principal = require(request, *OPERATIONS)
    values = svc.validate_service(await json_body(request))
    saved = await _write(request, svc.save_service, values, principal.user_id)
    return web.json_response(service_json(await _found(request, cat.get_service, saved)), status=201)


@routes.put(r"/api/v1/ops/services/{service_id:\d+}")
async def edit_service(request: web.Request) -> web.Response:
    principal = require(request, *OPERATIONS)
    service_id = path_id(request, "service_id")
    values = svc.validate_service(await json_body(request))
    await _write(request, cat.edit_service, service_id, values, principal.user_id)
    return web.json_response(service_json(await _found(request, cat.get_service, service_id)))


@routes.post(r"/api/v1/ops/services/{service_id:\d+}/close")
async def close_service(request: web.Request) -> web.Response:
    principal = require(request, *OPERATIONS)
    row = await _write(request, cat.close_service, path_id(request, "service_id"), principal.user_id)
    return web.json_response(service_json(row))
