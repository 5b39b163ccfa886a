"""The administrator's user pages: list and search, create, profiles, disable/enable, password-reset link.

Every change is posted, then redirected to a page that shows its result once (``?done=<code>``), so
Back and Refresh never post again; what cannot be undone by a click is confirmed on a page first.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from server import forms
from server.accounts import passwords, user_admin
from server.accounts.common import account_mail, page
from server.accounts.users import ROLE_LABELS, USER_STATUSES, Refused
from server.db import scalar
from server.forms import ValidationFailed
from server.i18n import N_, Msg
from server.mail import Mail
from server.mail_outbox import write_with_mail
from server.web import CONFIG, DB, ApiError, Principal, form_body, lang_of, not_found, path_id, require

routes = web.RouteTableDef()

USER_FIELDS = ("full_name", "username", "email", "email_confirm", "phone", "company_tax_id")

#: What a page says after a change redirected to it (``?done=<code>``); anything else says nothing.
DONE = {
    "created": Msg("User created; we e-mailed them a link to choose a password."),
    "granted": Msg("Profile granted."),
    "revoked": Msg("Profile taken away."),
    "disabled": Msg("User disabled: their sessions and API tokens no longer work."),
    "enabled": Msg("User enabled: they can sign in again."),
    "reset_sent": Msg("We e-mailed the user a link to choose a new password."),
}

STATUS_LABELS = {
    "active": Msg("Active"),
    "pending": Msg("Awaiting approval"),
    "disabled": Msg("Disabled"),
    "rejected": Msg("Rejected"),
}


def done_message(request: web.Request, messages: dict[str, Msg]) -> Msg | None:
    """The result a redirect after a post asked this page to show; None when there is none.

    Only a fixed message is shown, and its one parameter (``username``) only when it is a user
    name: a crafted link cannot make the page say anything else.
    """
    message = messages.get(request.query.get("done", ""))
    if message is None or "%(username)s" not in message.msgid:
        return message
    username = request.query.get("username", "")
    return Msg(message.msgid, {"username": username if forms.USERNAME_RE.match(username) else "?"})


def redirect_done(path: str, code: str, **params: str) -> web.HTTPFound:
    """Post → redirect → get: the page at ``path`` shows the message of ``code``."""
    return web.HTTPFound(f"{path}?{urlencode({'done': code, **params})}")


def refusal_error(exc: Refused) -> ApiError:
    """A refusal as the error page or API answer: not found is 404, a rule that forbids it 409."""
    return not_found() if exc.code == "not_found" else ApiError(409, exc.code, exc.message)


async def apply_change(request: web.Request, principal: Principal, change: Any, *args: Any) -> Any:
    """Run a ``user_admin`` change as ``principal``, now; a refusal becomes the error the API answers."""
    try:
        return await request.app[DB].write(change, *args, principal.user_id, time.time())
    except Refused as exc:
        raise refusal_error(exc) from None


def new_account_mail(
    request: web.Request, user: dict[str, Any], inviter: Principal, company_name: str, token: str
) -> Mail:
    """Tell a person someone created a user for them, with the link to choose a password (72 hours)."""
    return account_mail(
        user["email"],
        lang_of(request),
        N_("Portgate: your user for %(company)s"),
        N_(
            "Hello %(name)s,\n\n%(admin)s, of %(company)s, created a Portgate user for you. Your user name is "
            "%(username)s; choose your password here (valid for 72 hours):\n%(link)s"
        ),
        {
            "name": user["full_name"],
            "admin": inviter.full_name,
            "company": company_name,
            "username": user["username"],
            "link": f"{request.app[CONFIG].public_url}/password/set?token={token}",
        },
    )


async def create_and_invite(request: web.Request, principal: Principal, data: Any, roles: list[Any]) -> dict[str, Any]:
    """Validate, create the account with its profiles and mail its set-password link; shared with the API."""
    values = user_admin.validate_new_user(data, roles)
    user, _token = await write_with_mail(
        request.app,
        user_admin.create_user,
        values,
        principal.user_id,
        time.time(),
        lang_of(request),
        mail=lambda created: [new_account_mail(request, created[0], principal, created[0]["company_name"], created[1])],
    )
    return user


async def send_reset_link(request: web.Request, user_id: int) -> None:
    """Mail the account the same one-hour reset link "forgot password" sends (earlier links stop working)."""
    user = await request.app[DB].read(user_admin.user_detail, user_id)
    if user is None:
        raise not_found()
    public_url = request.app[CONFIG].public_url

    def mail(found: tuple[dict[str, Any], str] | None) -> list[Mail]:
        if found is None:
            return []
        body = N_(
            "Hello %(name)s,\n\nThe terminal's administrator sent you a link to choose a new password "
            "(valid for one hour):\n%(link)s"
        )
        params = {"name": user["full_name"], "link": f"{public_url}/password/reset?token={found[1]}"}
        return [account_mail(user["email"], user["language"], N_("Portgate: choose a new password"), body, params)]

    found = await write_with_mail(request.app, passwords.start_password_reset, user["email"], time.time(), mail=mail)
    if found is None:
        raise ApiError(409, "not_active", Msg("Only an active account can receive a password link."))


# --- the list -----------------------------------------------------------------------------------


@routes.get("/admin/users")
async def user_list(request: web.Request) -> web.Response:
    require(request, "admin")
    params = dict(request.query)
    errors: dict[str, Msg] = {}
    company = None
    if tax_id := params.pop("company_tax_id", "").strip():
        company = await request.app[DB].read(user_admin.company_by_tax_id, tax_id)
        if company is None:
            errors["company_tax_id"] = Msg("No company has this tax id in the billing registry.")
        params["company_id"] = str(company["id"]) if company else ""
    try:
        query = user_admin.parse_user_query(params)
    except ValidationFailed as exc:
        errors.update(exc.errors)
        query = user_admin.UserQuery()
    users, next_after = await request.app[DB].read(user_admin.list_users, query)
    filters = {k: request.query.get(k, "") for k in ("q", "role", "status", "company_tax_id")}
    context = {
        "users": users,
        "filters": filters,
        "errors": errors,
        "next_url": f"?{urlencode({**filters, 'after': next_after})}" if next_after else "",
        "first_url": f"?{urlencode(filters)}" if query.after else "",
        "roles": ROLE_LABELS,
        "statuses": {s: STATUS_LABELS[s] for s in USER_STATUSES},
        "status_labels": STATUS_LABELS,
        "success": done_message(request, DONE),
    }
    return page(request, "accounts/users.html", context, 400 if errors else 200)


# --- creating -----------------------------------------------------------------------------------


def _new_user_page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    context = {"values": {}, "errors": {}, "chosen_roles": [], "roles": ROLE_LABELS, **extra}
    return page(request, "accounts/users_new.html", context, status)


@routes.get("/admin/users/new")
async def new_user_form(request: web.Request) -> web.Response:
    require(request, "admin")
    # Most users an administrator creates are staff, whose profiles are held at the operator.
    operator = await request.app[DB].read(
        lambda db: scalar(db, "SELECT tax_id FROM companies WHERE kind = 'operator' ORDER BY id LIMIT 1")
    )
    return _new_user_page(request, values={"company_tax_id": operator or ""})


@routes.post("/admin/users/new")
async def new_user_submit(request: web.Request) -> web.Response:
    principal = require(request, "admin")
    form = await form_body(request)
    roles = [str(r) for r in form.getall("roles", [])]
    try:
        user = await create_and_invite(request, principal, form, roles)
    except ValidationFailed as exc:
        echo = {k: str(form.get(k, ""))[:200] for k in USER_FIELDS}
        return _new_user_page(request, 400, errors=exc.errors, values=echo, chosen_roles=roles)
    raise redirect_done(f"/admin/users/{user['id']}", "created")


# --- one user -----------------------------------------------------------------------------------


async def _detail_page(request: web.Request, user_id: int, status: int = 200, **extra: Any) -> web.Response:
    user = await request.app[DB].read(user_admin.user_detail, user_id)
    if user is None:
        raise not_found()
    context = {
        "user": user,
        "roles": ROLE_LABELS,
        "status_labels": STATUS_LABELS,
        "values": {},
        "errors": {},
        "success": done_message(request, DONE),
        **extra,
    }
    return page(request, "accounts/users_detail.html", context, status)


@routes.get(r"/admin/users/{user_id:\d+}")
async def user_page(request: web.Request) -> web.Response:
    require(request, "admin")
    return await _detail_page(request, path_id(request, "user_id"))


@routes.post(r"/admin/users/{user_id:\d+}/profiles")
async def grant(request: web.Request) -> web.Response:
    principal = require(request, "admin")
    user_id = path_id(request, "user_id")
    form = await form_body(request)
    try:
        values = user_admin.validate_grant(form)
        await apply_change(request, principal, user_admin.grant_profile, user_id, values)
    except ValidationFailed as exc:
        echo = {k: str(form.get(k, ""))[:100] for k in ("company_tax_id", "role")}
        return await _detail_page(request, user_id, 400, errors=exc.errors, values=echo)
    raise redirect_done(f"/admin/users/{user_id}", "granted")


def confirm_page(
    request: web.Request, title: Msg, consequence: Msg, action: str, back: str, button: Msg
) -> web.Response:
    """Ask before a change that takes something away: what will happen, in the reader's language."""
    context = {"title": title, "consequence": consequence, "action": action, "back": back, "button": button}
    return page(request, "accounts/users_confirm.html", context)


@routes.get(r"/admin/users/{user_id:\d+}/profiles/{profile_id:\d+}/revoke")
async def revoke_confirm(request: web.Request) -> web.Response:
    require(request, "admin")
    user_id, profile_id = path_id(request, "user_id"), path_id(request, "profile_id")
    profile = await request.app[DB].read(user_admin.profile_of, user_id, profile_id)
    if profile is None:
        raise not_found()
    params = {"name": profile["full_name"], "role": ROLE_LABELS[profile["role"]], "company": profile["company_name"]}
    return confirm_page(
        request,
        Msg("Take this profile away?"),
        Msg(
            "%(name)s will no longer act as %(role)s at %(company)s; a session using this profile must "
            "choose another one.",
            params,
        ),
        request.path,
        f"/admin/users/{user_id}",
        Msg("Take the profile away"),
    )


async def _change_and_show(request: web.Request, user_id: int, done: str, change: Any, *args: Any) -> web.Response:
    """Post → redirect → get for a change to one user; a refusal is shown on the user's page, saying why."""
    principal = require(request, "admin")
    try:
        await apply_change(request, principal, change, *args)
    except ApiError as exc:
        if exc.status == 404:
            raise
        return await _detail_page(request, user_id, exc.status, refusal=exc.message)
    raise redirect_done(f"/admin/users/{user_id}", done)


@routes.post(r"/admin/users/{user_id:\d+}/profiles/{profile_id:\d+}/revoke")
async def revoke(request: web.Request) -> web.Response:
    user_id, profile_id = path_id(request, "user_id"), path_id(request, "profile_id")
    return await _change_and_show(request, user_id, "revoked", user_admin.revoke_profile, user_id, profile_id)


@routes.get(r"/admin/users/{user_id:\d+}/disable")
async def disable_confirm(request: web.Request) -> web.Response:
    require(request, "admin")
    user_id = path_id(request, "user_id")
    user = await request.app[DB].read(user_admin.user_detail, user_id)
    if user is None:
        raise not_found()
    return confirm_page(
        request,
        Msg("Disable this user?"),
        Msg(
            "%(name)s (%(username)s) will be signed out everywhere at once: their sessions and API tokens stop "
            "working and they cannot sign in until an administrator enables the account again.",
            {"name": user["full_name"], "username": user["username"]},
        ),
        request.path,
        f"/admin/users/{user_id}",
        Msg("Disable the user"),
    )


@routes.post(r"/admin/users/{user_id:\d+}/disable")
@routes.post(r"/admin/users/{user_id:\d+}/enable")
async def disable_or_enable(request: web.Request) -> web.Response:
    user_id = path_id(request, "user_id")
    enable = request.path.endswith("/enable")
    done = "enabled" if enable else "disabled"
    return await _change_and_show(request, user_id, done, user_admin.set_enabled, user_id, enable)


@routes.post(r"/admin/users/{user_id:\d+}/password-reset")
async def reset_link(request: web.Request) -> web.Response:
    require(request, "admin")
    user_id = path_id(request, "user_id")
    try:
        await send_reset_link(request, user_id)
    except ApiError as exc:
        if exc.status == 404:
            raise
        return await _detail_page(request, user_id, exc.status, refusal=exc.message)
    raise redirect_done(f"/admin/users/{user_id}", "reset_sent")
