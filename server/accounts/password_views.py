"""Passwords: the signed-in user's change, and choosing one through an e-mailed reset or set link."""

from __future__ import annotations

import time

from aiohttp import web

from server import forms
from server.accounts import passwords
from server.accounts.common import (
    NOT_A_ROBOT,
    RESET_SENT,
    change_own_password,
    human_challenge,
    human_passed,
    invalid_link,
    link_record,
    page,
    start_password_reset,
)
from server.accounts.users import user_by_id
from server.flash import redirect_with_flash, render_with_flash
from server.forms import FieldErrors, ValidationFailed
from server.i18n import Msg
from server.security import hash_password_off_loop
from server.web import CONFIG, DB, require

routes = web.RouteTableDef()


@routes.get("/password")
async def password_form(request: web.Request) -> web.Response:
    require(request, profile=False)
    return render_with_flash(request, "accounts/password.html", {})


@routes.post("/password")
async def password_submit(request: web.Request) -> web.Response:
    principal = require(request, profile=False)
    form = await request.post()
    current = str(form.get("current_password", ""))
    errors = FieldErrors()
    if not current:
        errors.add("current_password", Msg("This field is required."))
    minimum = request.app[CONFIG].security.password_min_length
    try:
        new = passwords.validate_new_password(form, minimum, principal.username, principal.email)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if errors:
        return page(request, "accounts/password.html", {"errors": errors}, 400)
    if not await change_own_password(request, principal, current, new):
        wrong = {"current_password": Msg("The current password is not correct.")}
        return page(request, "accounts/password.html", {"errors": wrong}, 400)
    raise redirect_with_flash(request, "/password", Msg("Your password has been changed."))


@routes.get("/password/forgot")
async def forgot_form(request: web.Request) -> web.Response:
    return page(request, "accounts/forgot.html", {"human": human_challenge(request)})


@routes.post("/password/forgot")
async def forgot_submit(request: web.Request) -> web.Response:
    form = await request.post()
    errors = FieldErrors()
    email = forms.email(form, "email", errors)
    if errors:
        return page(request, "accounts/forgot.html", {"errors": errors, "human": human_challenge(request)}, 400)
    if not await human_passed(request, form):
        return page(request, "accounts/forgot.html", {"human": human_challenge(request), "notice": NOT_A_ROBOT}, 400)
    await start_password_reset(request, email)
    raise redirect_with_flash(request, "/login", RESET_SENT)


@routes.get("/password/reset")
async def reset_form(request: web.Request) -> web.Response:
    record = await link_record(request, "reset_password", time.time())
    return page(request, "accounts/reset.html", {"token": record["token"]})


@routes.get("/password/set")
async def set_form(request: web.Request) -> web.Response:
    record = await link_record(request, "set_password", time.time())
    return page(request, "accounts/reset.html", {"token": record["token"], "action": "/password/set"})


@routes.post("/password/reset")
@routes.post("/password/set")
async def reset_submit(request: web.Request) -> web.Response:
    """Choose a password through a reset link or a new account's set-password link."""
    now = time.time()
    record = await link_record(request, "reset_password" if request.path.endswith("reset") else "set_password", now)
    form = await request.post()
    user = await request.app[DB].read(user_by_id, record["user_id"])
    if user is None:  # the link outlived its account
        raise invalid_link()
    minimum = request.app[CONFIG].security.password_min_length
    try:
        new = passwords.validate_new_password(form, minimum, user["username"], user["email"])
    except ValidationFailed as exc:
        context = {"token": record["token"], "errors": exc.errors, "action": request.path}
        return page(request, "accounts/reset.html", context, 400)
    if not await request.app[DB].write(passwords.finish_password_set, record, await hash_password_off_loop(new), now):
        raise invalid_link()  # used by a concurrent request, or voided by a newer link, since it was read
    done = Msg("Your password has been saved. You can now sign in.")
    raise redirect_with_flash(request, "/login", done)
