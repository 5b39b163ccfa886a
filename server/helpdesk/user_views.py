"""Company users page: a customer administrator adds and removes the company's extra users."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from server.accounts.views import send_mail
from server.forms import ValidationFailed
from server.helpdesk import company_users
from server.helpdesk.common import hd_page
from server.i18n import N_, Msg
from server.web import CONFIG, DB, Principal, lang_of, not_found, path_id, require

routes = web.RouteTableDef()

USER_FIELDS = ("full_name", "username", "email", "email_confirm", "phone")


async def add_company_user(request: web.Request, principal: Principal, data: Any, roles: list[str]) -> dict[str, Any]:
    """Validate, create, and e-mail the new user a link to choose a password; shared with the API."""
    values = company_users.validate_user(data, roles)
    lang = lang_of(request)
    user, token = await request.app[DB].write(
        company_users.add_user, principal.company_id, values, principal.user_id, time.time(), lang
    )
    link = f"{request.app[CONFIG].public_url}/password/set?token={token}"
    await send_mail(
        request,
        user["email"],
        lang,
        N_("Portgate: your user for %(company)s"),
        N_(
            "Hello %(name)s,\n\n%(admin)s created a Portgate user for you at %(company)s. Your user name is "
            "%(username)s; choose your password here (valid for 72 hours):\n%(link)s"
        ),
        {
            "name": user["full_name"],
            "admin": principal.full_name,
            "company": principal.company_name,
            "username": user["username"],
            "link": link,
        },
    )
    return user


async def _users_page(request: web.Request, principal: Principal, status: int = 200, **extra: Any) -> web.Response:
    users = await request.app[DB].read(company_users.list_users, principal.company_id)
    return hd_page(
        request,
        "company_users.html",
        {"users": users, "assignable": company_users.ASSIGNABLE_ROLES, "chosen_roles": [], **extra},
        status,
    )


@routes.get("/company/users")
async def users(request: web.Request) -> web.Response:
    principal = require(request, "customer_admin")
    return await _users_page(request, principal)


@routes.post("/company/users")
async def add(request: web.Request) -> web.Response:
    principal = require(request, "customer_admin")
    form = await request.post()
    roles = [str(r) for r in form.getall("roles", [])]
    try:
        user = await add_company_user(request, principal, form, roles)
    except ValidationFailed as exc:
        echo = {k: str(form.get(k, ""))[:200] for k in USER_FIELDS}
        return await _users_page(request, principal, 400, errors=exc.errors, values=echo, chosen_roles=roles)
    return await _users_page(
        request,
        principal,
        success=Msg(
            "User %(username)s added; we e-mailed a link to choose a password.", {"username": user["username"]}
        ),
    )


@routes.post(r"/company/users/{user_id:\d+}/remove")
async def remove(request: web.Request) -> web.Response:
    principal = require(request, "customer_admin")
    try:
        user = await request.app[DB].write(
            company_users.remove_user, principal.company_id, path_id(request, "user_id"), principal.user_id
        )
    except company_users.CompanyUserError as exc:
        if exc.code == "not_found":
            raise not_found() from None
        return await _users_page(request, principal, 409, refusal=exc.message)
    return await _users_page(
        request, principal, success=Msg("User %(username)s removed from the company.", {"username": user["username"]})
    )
