"""Registration pages with a texted code, as the customers' app does it (seed 001, section 11).

RFC → one of the e-mails on file, masked → a mobile phone (typed twice) → a 4-digit code by SMS →
the code, a name and a password. The request's token travels in a short-lived cookie, never in a
URL or the page, so a shared screen or a browser's history does not carry it.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from server import forms
from server.accounts import registration
from server.accounts.common import NOT_A_ROBOT, human_challenge, human_passed, tax_id_unknown_message
from server.accounts.registration import TooManyCodes
from server.accounts.registration_sms import (
    SMS_NOT_SENT,
    TOO_MANY_CODES,
    TOO_MANY_FROM_ADDRESS,
    TOO_MANY_MISSES,
    WRONG_CODE,
    finish_phone_registration,
    text_registration_code,
)
from server.accounts.users import UnknownTaxId
from server.flash import redirect_with_flash, render_with_flash
from server.forms import FieldErrors, ValidationFailed
from server.i18n import Msg
from server.sms import SmsNotSent
from server.web import CONFIG, DB, ApiError, read_cookie, set_cookie

routes = web.RouteTableDef()

START = "accounts/register_phone.html"
FINISH = "accounts/register_phone_code.html"
REQUEST_COOKIE = "pg_phone_registration"
FINISH_FIELDS = ("full_name", "username")


def _start_page(request: web.Request, status: int = 200, **context: Any) -> web.Response:
    return render_with_flash(request, START, {"human": human_challenge(request), "values": {}, **context}, status)


@routes.get("/register/phone")
async def phone_form(request: web.Request) -> web.Response:
    return _start_page(request)


@routes.post("/register/phone")
async def phone_submit(request: web.Request) -> web.Response:
    """Step 1 (RFC → the masked e-mails on file) and step 2 (an e-mail and a phone → a texted code)."""
    form = await request.post()
    errors = FieldErrors()
    tax = forms.tax_id(form, "tax_id", errors)
    typed = {"tax_id": str(form.get("tax_id", ""))[:30]}
    if errors:
        return _start_page(request, 400, values=typed, errors=errors)
    emails = await request.app[DB].read(registration.masked_emails, tax)
    if emails is None:
        return _start_page(request, 400, values=typed, errors={"tax_id": tax_id_unknown_message(request)})
    typed = {
        "tax_id": tax,
        "email_index": str(form.get("email_index", ""))[:3],  # the choice stays checked after an error
        "phone": str(form.get("phone", ""))[:30],
        "phone_confirm": "",
    }
    shown: dict[str, Any] = {"values": typed, "emails": emails}
    if not emails:  # nothing on file to choose: only an agent can help (the page says how to reach one)
        return _start_page(request, values={"tax_id": tax}, no_emails=_no_emails_message(request))
    if "email_index" not in form and "phone" not in form:
        return _start_page(request, **shown)
    index = forms.integer(form, "email_index", errors, minimum=0, maximum=len(emails) - 1)
    phone = forms.phone(form, "phone", errors)
    forms.phone_confirmation(form, "phone_confirm", phone, errors)
    if errors or index is None:
        return _start_page(request, 400, errors=errors, **shown)
    if not await human_passed(request, form):
        return _start_page(request, 400, notice=NOT_A_ROBOT, **shown)
    return await _send_code(request, tax, index, phone, shown)


def _no_emails_message(request: web.Request) -> Msg:
    return Msg(
        "We have no e-mail address on file for this company. Write to %(email)s so that an agent can "
        "help you finish your registration.",
        {"email": request.app[CONFIG].support_email},
    )


async def _send_code(request: web.Request, tax: str, index: int, phone: str, shown: dict[str, Any]) -> web.Response:
    """Text the code and go on to the page that takes it; or step 2 again with the reason."""
    try:
        token = await text_registration_code(request, tax, index, phone)
    except UnknownTaxId:
        return _start_page(request, 400, values={"tax_id": tax}, errors={"tax_id": tax_id_unknown_message(request)})
    except ValidationFailed as exc:
        return _start_page(request, 400, errors=exc.errors, **shown)
    except TooManyCodes as exc:
        if exc.per == "address":
            return _start_page(request, 429, notice=TOO_MANY_FROM_ADDRESS, **shown)
        return _start_page(request, 429, errors={"phone": TOO_MANY_CODES}, **shown)
    except SmsNotSent:
        return _start_page(request, 503, notice=SMS_NOT_SENT, **shown)
    except ApiError as exc:  # too many wrong codes for this phone or company today
        return _start_page(request, exc.status, notice=exc.message, **shown)
    sent = Msg("We have sent a 4-digit code by SMS to %(phone)s.", {"phone": phone})
    response = redirect_with_flash(request, "/register/phone/code", sent)
    max_age = registration.PHONE_CODE_MINUTES * 60
    set_cookie(request, response, REQUEST_COOKIE, token, max_age=max_age)
    raise response


async def _live_request(request: web.Request) -> tuple[str, dict[str, Any]]:
    """The browser's registration request and its record; back to step 1 once it has expired."""
    token = read_cookie(request, REQUEST_COOKIE)
    try:
        return token, await request.app[DB].read(registration.phone_registration, token, time.time())
    except ValidationFailed:
        raise redirect_with_flash(request, "/register/phone", registration.CODE_EXPIRED) from None


def _finish_page(request: web.Request, record: dict[str, Any], status: int = 200, **context: Any) -> web.Response:
    about = {"email": forms.mask_email(record["email"]), "phone": record["phone"], "values": {}}
    return render_with_flash(request, FINISH, {**about, **context}, status)


@routes.get("/register/phone/code")
async def code_form(request: web.Request) -> web.Response:
    _token, record = await _live_request(request)
    return _finish_page(request, record)


@routes.post("/register/phone/code")
async def code_submit(request: web.Request) -> web.Response:
    token, record = await _live_request(request)
    form = await request.post()
    code = str(form.get("code", "")).strip()[:10]
    try:
        user = await finish_phone_registration(request, token, code, form)
    except ApiError:  # too many wrong codes for this phone or company today
        raise redirect_with_flash(request, "/register/phone", TOO_MANY_MISSES) from None
    except ValidationFailed as exc:
        if exc.errors.get("code") == registration.CODE_EXPIRED:
            raise redirect_with_flash(request, "/register/phone", registration.CODE_EXPIRED) from None
        if exc.errors.get("code") == WRONG_CODE and not await request.app[DB].read(
            registration.code_attempts_left, token, time.time()
        ):  # that was the last miss the request takes: say so now, not at the next try
            raise redirect_with_flash(request, "/register/phone", registration.CODE_SPENT) from None
        typed = {name: str(form.get(name, ""))[:200] for name in FINISH_FIELDS}
        return _finish_page(request, record, 400, values=typed, errors=exc.errors)
    if user["status"] == "active":
        done = Msg("Your account is ready. You can now sign in.")
    else:
        done = Msg(
            "Your phone is confirmed. Your account awaits approval (within 24 hours); we have sent you an e-mail."
        )
    response = redirect_with_flash(request, "/login", done)
    response.del_cookie(REQUEST_COOKIE, path="/")
    raise response
