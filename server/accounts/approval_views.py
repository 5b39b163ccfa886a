"""The administrator's queue of accounts awaiting approval, and the mail each decision sends.

Approving chooses the account's profiles (by default the ones it registered with) and may carry a
note that is mailed to the registrant; rejecting is confirmed on a page first, with its own note.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from server.accounts import approvals
from server.accounts.common import account_mail, page
from server.accounts.user_admin_views import done_message, redirect_done
from server.accounts.users import ROLE_LABELS
from server.config import Config
from server.forms import ValidationFailed, parse_id
from server.i18n import N_, Msg
from server.mail import Mail
from server.mail_outbox import write_with_mail
from server.web import CONFIG, DB, ApiError, Principal, form_body, require

routes = web.RouteTableDef()

DONE = {
    "approved": Msg("Registration approved; we e-mailed the user."),
    "rejected": Msg("Registration rejected; we e-mailed the user."),
}

ALREADY_DECIDED = Msg("This registration was already decided or does not exist.")


async def _queue_page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    pending = await request.app[DB].read(approvals.pending_registrations)
    context = {
        "pending": pending,
        "roles": ROLE_LABELS,
        "errors": {},
        "failed_id": None,
        "success": done_message(request, DONE),
        **extra,
    }
    return page(request, "accounts/registrations.html", context, status)


@routes.get("/admin/registrations")
async def registrations(request: web.Request) -> web.Response:
    require(request, "admin")
    return await _queue_page(request)


async def decide(
    request: web.Request, principal: Principal, user_id: int, approve: bool, values: dict[str, Any]
) -> dict[str, Any]:
    """Record the decision and mail it with the note; shared with the API."""
    config = request.app[CONFIG]
    user = await write_with_mail(
        request.app,
        approvals.decide_registration,
        principal.user_id,
        user_id,
        approve,
        time.time(),
        values["profiles"],
        mail=lambda user: [decision_mail(config, user, approve, values["note"])] if user else [],
    )
    if user is None:
        raise ApiError(404, "not_found", ALREADY_DECIDED)
    return user


def registration_id(request: web.Request) -> int:
    """The pending account's id from the URL; one that cannot exist was simply decided or never was."""
    user_id = parse_id(request.match_info["user_id"])
    if user_id is None:
        raise ApiError(404, "not_found", ALREADY_DECIDED)
    return user_id


@routes.post(r"/admin/registrations/{user_id:\d+}/approve")
async def approve(request: web.Request) -> web.Response:
    principal = require(request, "admin")
    user_id = registration_id(request)
    form = await form_body(request)
    # The page's form says it chose the profiles (none ticked is then an error); without it, the
    # registered profiles stay.
    chosen = None
    if form.get("choose_profiles"):
        company_id = str(form.get("company_id", ""))
        chosen = [{"company_id": company_id, "role": str(r)} for r in form.getall("roles", [])]
    try:
        values = approvals.validate_decision(form, chosen)
        await decide(request, principal, user_id, True, values)
    except ValidationFailed as exc:
        return await _queue_page(request, 400, errors=exc.errors, failed_id=user_id)
    raise redirect_done("/admin/registrations", "approved")


@routes.get(r"/admin/registrations/{user_id:\d+}/reject")
async def reject_confirm(request: web.Request) -> web.Response:
    require(request, "admin")
    user_id = registration_id(request)
    pending = await request.app[DB].read(approvals.pending_registrations)
    user = next((u for u in pending if u["id"] == user_id), None)
    if user is None:
        raise ApiError(404, "not_found", ALREADY_DECIDED)
    return page(request, "accounts/registrations_reject.html", {"user": user, "errors": {}, "values": {}})


@routes.post(r"/admin/registrations/{user_id:\d+}/reject")
async def reject(request: web.Request) -> web.Response:
    principal = require(request, "admin")
    user_id = registration_id(request)
    form = await form_body(request)
    try:
        values = approvals.validate_decision(form, None)
    except ValidationFailed as exc:
        return await _queue_page(request, 400, errors=exc.errors, failed_id=user_id)
    await decide(request, principal, user_id, False, values)
    raise redirect_done("/admin/registrations", "rejected")


def decision_mail(config: Config, user: dict[str, Any], approved: bool, note: str) -> Mail:
    """Tell the registrant, in their language, whether they can now sign in, with the administrator's note."""
    params = {"name": user["full_name"], "note": note}
    if approved:
        subject = N_("Portgate: your account is approved")
        body = BODIES[True, bool(note)]
        params |= {"username": user["username"], "link": f"{config.public_url}/login"}
    else:
        subject = N_("Portgate: your registration was not approved")
        body = BODIES[False, bool(note)]
        params["email"] = config.support_email
    return account_mail(user["email"], user["language"], subject, body, params)


#: (approved, with a note) → the mail's text; each is one message to translate whole.
BODIES = {
    (True, False): N_("Hello %(name)s,\n\nYour account %(username)s has been approved. Sign in at %(link)s"),
    (True, True): N_(
        "Hello %(name)s,\n\nYour account %(username)s has been approved. Sign in at %(link)s\n\n"
        "A note from the terminal:\n%(note)s"
    ),
    (False, False): N_("Hello %(name)s,\n\nYour registration could not be approved. For help, write to %(email)s."),
    (False, True): N_(
        "Hello %(name)s,\n\nYour registration could not be approved. For help, write to %(email)s.\n\n"
        "A note from the terminal:\n%(note)s"
    ),
}
