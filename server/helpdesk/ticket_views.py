"""Service-ticket pages: "Support tickets", generating from a policy, the thread, the agent console.

Every form post that succeeds answers a redirect to a page that shows its result once (``flash``),
so Back and Refresh never send it again; closing and cancelling are asked for on a page of their own
that says what will happen.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from server.flash import redirect_with_flash
from server.forms import ValidationFailed
from server.helpdesk import actions, attachments, policies, tickets
from server.helpdesk.common import (
    CUSTOMER,
    STAFF,
    TICKET_ROLES,
    hd_page,
    now,
    ticket_scope,
    today,
)
from server.helpdesk.paging import ListLinks
from server.helpdesk.settings import HELPDESK_SETTINGS
from server.i18n import N_, Msg
from server.tickets.paging import Keyset
from server.web import DB, Principal, not_found, parse_id, path_id, require

routes = web.RouteTableDef()

TICKET_FIELDS = ("area", "subject", "email", "email_confirm", "phone", "phone_confirm", "contact_hours", "description")


@routes.get("/helpdesk/tickets")
async def my_tickets(request: web.Request) -> web.Response:
    principal = require(request, *TICKET_ROLES)
    if principal.role in STAFF:
        raise web.HTTPFound("/helpdesk/console")
    status = request.query.get("status", "")
    search = request.query.get("q", "")[:100]
    listing = await request.app[DB].read(
        tickets.tickets_page, principal.company_id, status=status, search=search, at=Keyset.of(request.query)
    )
    context = {"tickets": listing.rows, "listing": listing, "query": ListLinks({"status": status, "q": search})}
    return hd_page(request, "helpdesk/tickets.html", {**context, "status": status, "q": search})


async def _policy_choice(request: web.Request, principal: Principal, status: int = 200, **extra: Any) -> web.Response:
    search = request.query.get("q", "")[:100]
    system = request.query.get("system", "")[:60]
    listing = await request.app[DB].read(
        policies.policies_page,
        principal.company_id,
        today(request),
        system=system,
        search=search,
        current_only=True,
        at=Keyset.of(request.query),
    )
    context = {"policies": listing.rows, "listing": listing, "query": ListLinks({"q": search, "system": system})}
    return hd_page(request, "helpdesk/choose_policy.html", {**context, "q": search, "system": system, **extra}, status)


async def _ticket_form(
    request: web.Request, principal: Principal, policy_id: int | None, status: int = 200, **extra: Any
) -> web.Response:
    policy = None
    if policy_id is not None:
        policy = await request.app[DB].read(policies.get_policy, principal.company_id, policy_id, today(request))
    if policy is None:
        if policy_id is not None:
            raise not_found()
        return await _policy_choice(request, principal, status, **extra)
    values = extra.pop("values", None) or {"email": principal.email, "email_confirm": principal.email}
    return hd_page(request, "helpdesk/new.html", {"policy": policy, "values": values, **extra}, status)


@routes.get("/helpdesk/tickets/new")
async def new_ticket(request: web.Request) -> web.Response:
    principal = require(request, *CUSTOMER)
    if "policy_id" not in request.query:
        return await _policy_choice(request, principal)
    policy_id = parse_id(request.query.get("policy_id"))
    if policy_id is None:
        raise not_found()
    return await _ticket_form(request, principal, policy_id)


@routes.post("/helpdesk/tickets/new")
async def create_ticket(request: web.Request) -> web.Response:
    principal = require(request, *CUSTOMER)
    form = await request.post()
    policy_id = parse_id(form.get("policy_id"))
    echo = {k: str(form.get(k, ""))[:5000] for k in TICKET_FIELDS}
    try:
        files = attachments.read_file_fields(form, "attachments", request.app[HELPDESK_SETTINGS])
        ticket = await actions.create_ticket(request.app, principal, form, files)
    except ValidationFailed as exc:
        return await _ticket_form(request, principal, policy_id, 400, values=echo, errors=exc.errors)
    except tickets.HelpdeskError as exc:
        if exc.code == "not_found":
            raise not_found() from None
        return await _ticket_form(
            request, principal, policy_id, 409, values=echo, refusal=exc.message, existing=exc.ticket
        )
    generated = Msg("Your ticket %(number)s was generated.", {"number": ticket["number"]})
    raise redirect_with_flash(request, f"/helpdesk/tickets/{ticket['id']}", generated)


async def _thread_page(
    request: web.Request, principal: Principal, ticket_id: int, status: int = 200, **extra: Any
) -> web.Response:
    db = request.app[DB]
    ticket = await db.read(tickets.get_ticket, ticket_scope(principal), ticket_id)
    if ticket is None:
        raise not_found()
    thread = await db.read(tickets.thread, ticket_id)
    return hd_page(
        request,
        "helpdesk/ticket.html",
        {
            "ticket": ticket,
            "thread": thread,
            "is_staff": principal.role in STAFF,
            "can_reply": ticket["status"] in tickets.OPEN_STATUSES,
            "can_rate": principal.role in CUSTOMER and ticket["status"] == "closed" and ticket["rating"] is None,
            **extra,
        },
        status,
    )


@routes.get(r"/helpdesk/tickets/{ticket_id:\d+}")
async def show_ticket(request: web.Request) -> web.Response:
    principal = require(request, *TICKET_ROLES)
    return await _thread_page(request, principal, path_id(request, "ticket_id"))


@routes.post(r"/helpdesk/tickets/{ticket_id:\d+}/reply")
async def reply(request: web.Request) -> web.Response:
    principal = require(request, *TICKET_ROLES)
    ticket_id = path_id(request, "ticket_id")
    form = await request.post()
    try:
        files = attachments.read_file_fields(form, "attachments", request.app[HELPDESK_SETTINGS])
        await actions.reply(request.app, principal, ticket_id, form, files, via="web")
    except ValidationFailed as exc:
        return await _thread_page(
            request, principal, ticket_id, 400, errors=exc.errors, values={"body": str(form.get("body", ""))[:10_000]}
        )
    except tickets.HelpdeskError as exc:
        return await _refused(request, principal, ticket_id, exc)
    raise redirect_with_flash(request, f"/helpdesk/tickets/{ticket_id}#replies", Msg("Your reply was sent."))


#: What the agent's two ending actions do to a ticket, and what they say once done.
FINISHED = {
    "close": ("closed", N_("Ticket %(number)s is closed; the customer was invited by e-mail to rate it.")),
    "cancel": ("cancelled", N_("Ticket %(number)s is cancelled.")),
}


@routes.post(r"/helpdesk/tickets/{ticket_id:\d+}/assign")
async def assign(request: web.Request) -> web.Response:
    principal = require(request, *STAFF)
    ticket_id = path_id(request, "ticket_id")
    try:
        ticket = await request.app[DB].write(tickets.assign_to, ticket_id, principal.user_id, now())
    except tickets.HelpdeskError as exc:
        return await _refused(request, principal, ticket_id, exc)
    assigned = Msg("Ticket %(number)s is assigned to you.", {"number": ticket["number"]})
    raise redirect_with_flash(request, f"/helpdesk/tickets/{ticket_id}", assigned)


@routes.get(r"/helpdesk/tickets/{ticket_id:\d+}/{action:close|cancel}")
async def confirm_finish(request: web.Request) -> web.Response:
    """What closing or cancelling will do, with the button that does it: nothing ends on one click."""
    principal = require(request, *STAFF)
    ticket = await request.app[DB].read(tickets.get_ticket, ticket_scope(principal), path_id(request, "ticket_id"))
    if ticket is None:
        raise not_found()
    return hd_page(
        request,
        "helpdesk/ticket_finish.html",
        {"ticket": ticket, "action": request.match_info["action"], "open": ticket["status"] in tickets.OPEN_STATUSES},
    )


@routes.post(r"/helpdesk/tickets/{ticket_id:\d+}/{action:close|cancel}")
async def finish(request: web.Request) -> web.Response:
    principal = require(request, *STAFF)
    ticket_id = path_id(request, "ticket_id")
    status, done = FINISHED[request.match_info["action"]]
    try:
        ticket = await actions.finish(request.app, principal, ticket_id, status)
    except tickets.HelpdeskError as exc:
        return await _refused(request, principal, ticket_id, exc)
    raise redirect_with_flash(request, f"/helpdesk/tickets/{ticket_id}", Msg(done, {"number": ticket["number"]}))


async def _refused(
    request: web.Request, principal: Principal, ticket_id: int, exc: tickets.HelpdeskError
) -> web.Response:
    """The thread with the refusal (a 409), or a 404 for a ticket the principal cannot see."""
    if exc.code == "not_found":
        raise not_found() from None
    return await _thread_page(request, principal, ticket_id, 409, refusal=exc.message)


@routes.post(r"/helpdesk/tickets/{ticket_id:\d+}/rating")
async def rate(request: web.Request) -> web.Response:
    principal = require(request, *CUSTOMER)
    ticket_id = path_id(request, "ticket_id")
    form = await request.post()
    try:
        values = tickets.validate_rating(form)
        await request.app[DB].write(tickets.rate, principal.company_id, ticket_id, values, principal.user_id, now())
    except ValidationFailed as exc:
        return await _thread_page(
            request,
            principal,
            ticket_id,
            400,
            errors=exc.errors,
            values={"comment": str(form.get("comment", ""))[:2000]},
        )
    except tickets.HelpdeskError as exc:
        return await _refused(request, principal, ticket_id, exc)
    raise redirect_with_flash(request, f"/helpdesk/tickets/{ticket_id}", Msg("Thank you for rating this ticket."))


async def attachment_response(request: web.Request, principal: Principal, attachment_id: int) -> web.Response:
    """The file, as a download, only to someone who may see its ticket; shared with the API."""
    row = await request.app[DB].read(tickets.get_attachment, ticket_scope(principal), attachment_id)
    if row is None:
        raise not_found()
    path = request.app[HELPDESK_SETTINGS].attachments_dir / row["stored_name"]
    try:
        data = await asyncio.to_thread(path.read_bytes)
    except FileNotFoundError:
        raise not_found() from None
    return web.Response(body=data, headers=attachments.download_headers(row["original_name"], row["content_type"]))


@routes.get(r"/helpdesk/attachments/{attachment_id:\d+}")
async def download(request: web.Request) -> web.Response:
    principal = require(request, *TICKET_ROLES)
    return await attachment_response(request, principal, path_id(request, "attachment_id"))


@routes.get("/helpdesk/console")
async def console(request: web.Request) -> web.Response:
    """The agent's queue per area: open and waiting tickets first, or any status."""
    require(request, *STAFF)
    settings = request.app[HELPDESK_SETTINGS]
    area = request.query.get("area", "")
    if area and area not in settings.areas:
        raise not_found()
    status = request.query.get("status", "active")
    db = request.app[DB]
    search = request.query.get("q", "")[:100]
    listing = await db.read(
        tickets.tickets_page, None, area=area, status=status, search=search, at=Keyset.of(request.query)
    )
    counts = await db.read(tickets.queue_counts)
    links = ListLinks({"area": area, "status": status, "q": search})
    return hd_page(
        request,
        "helpdesk/console.html",
        {"tickets": listing.rows, "listing": listing, "query": links, "area": area, "status": status}
        | {"counts": counts, "q": search},
    )
