"""The administrator's queue of accounts awaiting approval, and the mail each decision sends."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from server.accounts import approvals
from server.accounts.common import page, send_mail
from server.i18n import N_, Msg
from server.web import CONFIG, DB, ApiError, parse_id, require

routes = web.RouteTableDef()


@routes.get("/admin/registrations")
async def registrations(request: web.Request) -> web.Response:
    require(request, "admin")
    pending = await request.app[DB].read(approvals.pending_registrations)
    return page(request, "accounts/registrations.html", {"pending": pending})


@routes.post(r"/admin/registrations/{user_id:\d+}/{decision:approve|reject}")
async def approve_or_reject_registration(request: web.Request) -> web.Response:
    principal = require(request, "admin")
    approve = request.match_info["decision"] == "approve"
    user_id = parse_id(request.match_info["user_id"])
    user = None
    if user_id is not None:
        user = await request.app[DB].write(
            approvals.decide_registration, principal.user_id, user_id, approve, time.time()
        )
    if user is None:
        raise ApiError(404, "not_found", Msg("This registration was already decided or does not exist."))
    await _mail_decision(request, user, approve)
    raise web.HTTPFound("/admin/registrations")


async def _mail_decision(request: web.Request, user: dict[str, Any], approved: bool) -> None:
    """Tell the registrant, in their language, whether they can now sign in."""
    config = request.app[CONFIG]
    if approved:
        await send_mail(
            request,
            user["email"],
            user["language"],
            N_("Portgate: your account is approved"),
            N_("Hello %(name)s,\n\nYour account %(username)s has been approved. Sign in at %(link)s"),
            {"name": user["full_name"], "username": user["username"], "link": f"{config.public_url}/login"},
        )
    else:
        await send_mail(
            request,
            user["email"],
            user["language"],
            N_("Portgate: your registration was not approved"),
            N_("Hello %(name)s,\n\nYour registration could not be approved. For help, write to %(email)s."),
            {"name": user["full_name"], "email": config.support_email},
        )
