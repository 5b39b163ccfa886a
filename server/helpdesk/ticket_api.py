"""Service-ticket JSON API (``/api/v1/helpdesk/...``) for the mobile app and integrations.

Creating a ticket or a reply takes a JSON object, or ``multipart/form-data`` with the same fields
plus files under ``attachments``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from server.helpdesk import actions, attachments, tickets
from server.helpdesk.common import (
    CUSTOMER,
    STAFF,
    TICKET_ROLES,
    area_name,
    now,
    status_name,
    ticket_scope,
)
from server.helpdesk.paging import api_paging, page_json
from server.helpdesk.settings import HELPDESK_SETTINGS
from server.helpdesk.ticket_views import attachment_response
from server.i18n import render
from server.timefmt import relative
from server.web import DB, form_body, json_body, lang_of, not_found, path_id, require

routes = web.RouteTableDef()


async def read_input(request: web.Request) -> tuple[Mapping[str, Any], list[tuple[str, bytes]]]:
    """The request's fields and files: multipart (with files) or a JSON object (without)."""
    if request.content_type == "multipart/form-data":
        form = await form_body(request)
        return form, attachments.read_file_fields(form, "attachments", request.app[HELPDESK_SETTINGS])
    return await json_body(request), []


def _file_json(f: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": f["id"],
        "name": f["original_name"],
        "content_type": f["content_type"],
        "size": f["size"],
        "url": f"/api/v1/helpdesk/attachments/{f['id']}",
    }


def ticket_json(row: Mapping[str, Any], lang: str, *, staff: bool = False) -> dict[str, Any]:
    data = {
        "id": row["id"],
        "number": row["number"],
        "system": row["system"],
        "serial": row["serial"],
        "policy_id": row["policy_id"],
        "policy_number": row["policy_number"],
        "area": row["area"],
        "area_label": area_name(lang, row["area"]),
        "subject": row["subject"],
        "status": row["status"],
        "status_label": status_name(lang, row["status"]),
        "email": row["email"],
        "phone": row["phone"],
        "contact_hours": row["contact_hours"],
        "description": row["description"],
        "created_at": row["created_at"],
        "created_ago": relative(row["created_at"], now(), lang),
        "updated_at": row["updated_at"],
        "closed_at": row["closed_at"],
        "agent": row["assigned_name"],
        "rating": row["rating"],
        "rating_comment": row["rating_comment"] if row["rating"] else None,
    }
    if staff:
        data["company"] = row["company_name"]
    return data


def refusal(request: web.Request, exc: tickets.HelpdeskError) -> web.Response:
    """A refused action; "already have an open ticket" also says which ticket, so the app can link it."""
    if exc.code == "not_found":
        raise not_found()
    body: dict[str, Any] = {"error": {"code": exc.code, "message": render(lang_of(request), exc.message), "fields": {}}}
    if exc.ticket:
        body["existing_ticket"] = {
            "id": exc.ticket["id"],
            "number": exc.ticket["number"],
            "url": f"/api/v1/helpdesk/tickets/{exc.ticket['id']}",
        }
    return web.json_response(body, status=409)


@routes.get("/api/v1/helpdesk/areas")
async def api_areas(request: web.Request) -> web.Response:
    require(request)
    lang = lang_of(request)
    return web.json_response(
        {"areas": [{"code": a, "label": area_name(lang, a)} for a in request.app[HELPDESK_SETTINGS].areas]}
    )


@routes.get("/api/v1/helpdesk/tickets")
async def api_list(request: web.Request) -> web.Response:
    """Customers: their company's tickets. Helpdesk staff: the queue (``?area=``, ``?status=``)."""
    principal = require(request, *TICKET_ROLES)
    staff = principal.role in STAFF
    page = await request.app[DB].read(
        tickets.tickets_page,
        ticket_scope(principal),
        area=request.query.get("area", "")[:40],
        status=request.query.get("status", "active" if staff else ""),
        search=request.query.get("q", "")[:100],
        **api_paging(request),
    )
    lang = lang_of(request)
    return page_json(page, "tickets", lambda r: ticket_json(r, lang, staff=staff))


@routes.post("/api/v1/helpdesk/tickets")
async def api_create(request: web.Request) -> web.Response:
    principal = require(request, *CUSTOMER)
    data, files = await read_input(request)
    try:
        ticket = await actions.create_ticket(request.app, principal, data, files)
    except tickets.HelpdeskError as exc:
        return refusal(request, exc)
    return web.json_response(ticket_json(ticket, lang_of(request)), status=201)


async def _ticket_with_thread(request: web.Request, ticket_id: int) -> dict[str, Any]:
    principal = require(request, *TICKET_ROLES)
    db = request.app[DB]
    row = await db.read(tickets.get_ticket, ticket_scope(principal), ticket_id)
    if row is None:
        raise not_found()
    thread = await db.read(tickets.thread, ticket_id)
    lang = lang_of(request)
    data = ticket_json(row, lang, staff=principal.role in STAFF)
    data["attachments"] = [_file_json(f) for f in thread["attachments"]]
    data["replies"] = [
        {
            "id": r["id"],
            "author_role": r["author_role"],
            "author_name": r["author_name"],
            "body": r["body"],
            "via": r["via"],
            "created_at": r["created_at"],
            "created_ago": relative(r["created_at"], now(), lang),
            "attachments": [_file_json(f) for f in r["attachments"]],
        }
        for r in thread["replies"]
    ]
    return data


@routes.get(r"/api/v1/helpdesk/tickets/{ticket_id:\d+}")
async def api_ticket(request: web.Request) -> web.Response:
    return web.json_response(await _ticket_with_thread(request, path_id(request, "ticket_id")))


@routes.post(r"/api/v1/helpdesk/tickets/{ticket_id:\d+}/replies")
async def api_reply(request: web.Request) -> web.Response:
    principal = require(request, *TICKET_ROLES)
    ticket_id = path_id(request, "ticket_id")
    data, files = await read_input(request)
    try:
        await actions.reply(request.app, principal, ticket_id, data, files, via="api")
    except tickets.HelpdeskError as exc:
        return refusal(request, exc)
    return web.json_response(await _ticket_with_thread(request, ticket_id), status=201)


@routes.post(r"/api/v1/helpdesk/tickets/{ticket_id:\d+}/assign")
@routes.post(r"/api/v1/helpdesk/tickets/{ticket_id:\d+}/close")
@routes.post(r"/api/v1/helpdesk/tickets/{ticket_id:\d+}/cancel")
async def api_agent_action(request: web.Request) -> web.Response:
    principal = require(request, *STAFF)
    ticket_id = path_id(request, "ticket_id")
    action = request.path.rsplit("/", 1)[1]
    try:
        if action == "assign":
            row = await request.app[DB].write(tickets.assign_to, ticket_id, principal.user_id, now())
        else:
            row = await actions.finish(
                request.app, principal, ticket_id, "closed" if action == "close" else "cancelled"
            )
    except tickets.HelpdeskError as exc:
        return refusal(request, exc)
    return web.json_response(ticket_json(row, lang_of(request), staff=True))


@routes.post(r"/api/v1/helpdesk/tickets/{ticket_id:\d+}/rating")
async def api_rate(request: web.Request) -> web.Response:
    principal = require(request, *CUSTOMER)
    ticket_id = path_id(request, "ticket_id")
    values = tickets.validate_rating(await json_body(request))
    try:
        row = await request.app[DB].write(
            tickets.rate, principal.company_id, ticket_id, values, principal.user_id, now()
        )
    except tickets.HelpdeskError as exc:
        return refusal(request, exc)
    return web.json_response(ticket_json(row, lang_of(request)))


@routes.get(r"/api/v1/helpdesk/attachments/{attachment_id:\d+}")
async def api_attachment(request: web.Request) -> web.Response:
    principal = require(request, *TICKET_ROLES)
    return await attachment_response(request, principal, path_id(request, "attachment_id"))
