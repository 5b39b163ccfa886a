"""The "My account" page: the signed-in person's name, e-mail, phone and language; password via /password."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from server.accounts import my_account
from server.accounts.common import account_mail, page, require_person
from server.flash import redirect_with_flash, render_with_flash
from server.forms import ValidationFailed
from server.i18n import LANGUAGES, N_, Msg
from server.mail import Mail
from server.mail_outbox import write_with_mail
from server.web import CONFIG, DB, LANG_COOKIE, Principal, form_body, set_cookie

routes = web.RouteTableDef()

TEMPLATE = "accounts/my_account.html"
FIELDS = ("full_name", "email", "phone", "language")


async def save_account(request: web.Request, principal: Principal, data: Mapping[str, Any]) -> dict[str, str]:
    """Check and save the fields (page or API), mailing a confirmation link to a new e-mail; returns what
    was saved. Raises ``ValidationFailed`` with one message per bad field."""
    values = my_account.validate_account(data)
    confirm_url = f"{request.app[CONFIG].public_url}/account/email/confirm"

    def mail(token: str | None) -> list[Mail]:
        if not token:
            return []
        body = N_(
            "Hello %(name)s,\n\nTo make %(email)s the e-mail of your Portgate account open this link "
            "(valid for 24 hours):\n%(link)s\n\nUntil then your account keeps its current e-mail. "
            "If you did not ask for it, ignore this message."
        )
        params = {"name": values["full_name"], "email": values["email"], "link": f"{confirm_url}?token={token}"}
        subject = N_("Portgate: confirm your new e-mail")
        return [account_mail(values["email"], values["language"], subject, body, params)]

    token = await write_with_mail(
        request.app, my_account.update_account, principal.user_id, values, time.time(), mail=mail
    )
    return {**values, "email_confirmation_sent": "yes" if token else ""}


@routes.get("/account")
async def account_page(request: web.Request) -> web.Response:
    principal = require_person(request, profile=False)
    values = await request.app[DB].read(my_account.my_account, principal.user_id)
    return render_with_flash(request, TEMPLATE, {"values": values, "languages": LANGUAGES})


@routes.post("/account")
async def account_save(request: web.Request) -> web.Response:
    principal = require_person(request, profile=False)
    form = await form_body(request)
    try:
        saved = await save_account(request, principal, form)
    except ValidationFailed as exc:
        values = {name: str(form.get(name, ""))[:300] for name in FIELDS}
        context = {"values": {**values, "username": principal.username}, "errors": exc.errors, "languages": LANGUAGES}
        return page(request, TEMPLATE, context, 400)
    done = Msg("Your account has been saved.")
    if saved["email_confirmation_sent"]:
        done = Msg(
            "Your account has been saved. To change your e-mail, open the link we have sent to %(email)s.",
            {"email": saved["email"]},
        )
    response = redirect_with_flash(request, "/account", done)
    set_cookie(request, response, LANG_COOKIE, saved["language"], max_age=365 * 86400)
    raise response


@routes.get("/account/email/confirm")
async def email_confirm(request: web.Request) -> web.Response:
    token = request.query.get("token", "")[:200]
    email = await request.app[DB].write(my_account.confirm_email, token, time.time())
    if email is None:
        message = Msg("This link is not valid or has expired.")
        return page(request, "accounts/message.html", {"title": Msg("My account"), "message": message}, 400)
    done = Msg("%(email)s is now the e-mail of your account.", {"email": email})
    return page(request, "accounts/message.html", {"title": Msg("My account"), "message": done, "link": "/account"})
