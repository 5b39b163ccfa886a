"""Company users page: a customer administrator adds the company's extra users, edits their profiles, removes them.

Every change is posted, then redirected to the list, which shows its result once; removing is
confirmed on a page that says what will happen.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from server.accounts.user_admin_views import (
    confirm_page,
    done_message,
    new_account_mail,
    redirect_done,
    refusal_error,
)
from server.accounts.users import Refused
from server.forms import ValidationFailed
from server.helpdesk import company_users
from server.helpdesk.common import hd_page
from server.i18n import Msg
from server.mail_outbox import write_with_mail
from server.web import DB, Principal, form_body, lang_of, path_id, require

routes = web.RouteTableDef()

USER_FIELDS = ("full_name", "username", "email", "email_confirm", "phone")

DONE = {
    "added": Msg("User %(username)s added; we e-mailed a link to choose a password."),
    "profiles": Msg("Profiles of %(username)s saved."),
    "removed": Msg("User %(username)s removed from the company."),
}


async def add_company_user(request: web.Request, principal: Principal, data: Any, roles: list[str]) -> dict[str, Any]:
    """Validate, create, and e-mail the new user a link to choose a password; shared with the API."""
    values = company_users.validate_user(data, roles)
    company_name = principal.company_name or ""
    user, _token = await write_with_mail(
        request.app,
        company_users.add_user,
        principal.company_id,
        values,
        principal.user_id,
        time.time(),
        lang_of(request),
        mail=lambda added: [new_account_mail(request, added[0], principal, company_name, added[1])],
    )
    return user


async def set_company_roles(
    request: web.Request, principal: Principal, user_id: int, roles: list[Any]
) -> dict[str, Any]:
    """Validate and save the profiles a user holds at the principal's company; shared with the API."""
    chosen = company_users.validate_roles(roles)
    return await request.app[DB].write(
        company_users.set_roles, principal.company_id, user_id, chosen, principal.user_id, time.time()
    )


async def _users_page(request: web.Request, principal: Principal, status: int = 200, **extra: Any) -> web.Response:
    users = await request.app[DB].read(company_users.list_users, principal.company_id)
    context = {
        "users": users,
        "assignable": company_users.ASSIGNABLE_ROLES,
        "chosen_roles": [],
        "success": done_message(request, DONE),
        **extra,
    }
    return hd_page(request, "helpdesk/company_users.html", context, status)


@routes.get("/company/users")
async def users(request: web.Request) -> web.Response:
    principal = require(request, "customer_admin")
    return await _users_page(request, principal)


@routes.post("/company/users")
async def add(request: web.Request) -> web.Response:
    principal = require(request, "customer_admin")
    form = await form_body(request)
    roles = [str(r) for r in form.getall("roles", [])]
    try:
        user = await add_company_user(request, principal, form, roles)
    except ValidationFailed as exc:
        echo = {k: str(form.get(k, ""))[:200] for k in USER_FIELDS}
        return await _users_page(request, principal, 400, errors=exc.errors, values=echo, chosen_roles=roles)
    raise redirect_done("/company/users", "added", username=user["username"])


@routes.post(r"/company/users/{user_id:\d+}/profiles")
async def edit_profiles(request: web.Request) -> web.Response:
    principal = require(request, "customer_admin")
    user_id = path_id(request, "user_id")
    form = await form_body(request)
    try:
        user = await set_company_roles(request, principal, user_id, [str(r) for r in form.getall("roles", [])])
    except ValidationFailed as exc:
        return await _users_page(request, principal, 400, row_errors={user_id: exc.errors["roles"]})
    except Refused as exc:
        if exc.code == "not_found":
            raise refusal_error(exc) from None
        return await _users_page(request, principal, 409, refusal=exc.message)
    raise redirect_done("/company/users", "profiles", username=user["username"])


@routes.get(r"/company/users/{user_id:\d+}/remove")
async def remove_confirm(request: web.Request) -> web.Response:
    principal = require(request, "customer_admin")
    user_id = path_id(request, "user_id")
    listed = await request.app[DB].read(company_users.list_users, principal.company_id)
    user = next((u for u in listed if u["id"] == user_id), None)
    if user is None:
        raise refusal_error(company_users.NOT_FOUND)
    return confirm_page(
        request,
        Msg("Remove this user from the company?"),
        Msg(
            "%(name)s (%(username)s) will lose their profiles at %(company)s. If they have no profile at another "
            "company, their account is disabled and signed out everywhere.",
            {"name": user["full_name"], "username": user["username"], "company": principal.company_name},
        ),
        request.path,
        "/company/users",
        Msg("Remove the user"),
    )


@routes.post(r"/company/users/{user_id:\d+}/remove")
async def remove(request: web.Request) -> web.Response:
    principal = require(request, "customer_admin")
    try:
        user = await request.app[DB].write(
            company_users.remove_user, principal.company_id, path_id(request, "user_id"), principal.user_id, time.time()
        )
    except Refused as exc:
        if exc.code == "not_found":
            raise refusal_error(exc) from None
        return await _users_page(request, principal, 409, refusal=exc.message)
    raise redirect_done("/company/users", "removed", username=user["username"])
