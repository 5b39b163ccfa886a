"""An existing customer's registration with a texted 4-digit code: one path for the API and the pages.

RFC → one of the e-mails on file (masked) → a phone that gets the code → the code and a password.
The rules and the SQL are in :mod:`server.accounts.registration`; this joins them to the SMS sender.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from server.accounts import registration
from server.accounts.common import mail_registration_received
from server.forms import FieldErrors, ValidationFailed
from server.i18n import Msg, render
from server.security import hash_password
from server.web import CONFIG, DB, SMS, client_address, lang_of

TOO_MANY_CODES = Msg("Too many codes were sent to this phone. Try again in an hour.")
TOO_MANY_FROM_ADDRESS = Msg("Too many codes were requested from your network. Try again in an hour.")
SMS_NOT_SENT = Msg("The text message could not be sent. Try again in a few minutes.")
WRONG_CODE = Msg("The confirmation code is not correct.")
ENTER_CODE = Msg("Enter the 4 digits of the code we texted you.")


async def text_registration_code(request: web.Request, tax_id: str, email_index: int, phone: str) -> str:
    """Start the registration and text its code to ``phone``; returns the request's token.

    Raises ``UnknownTaxId``, ``ValidationFailed`` (``email_index``), ``TooManyCodes`` or ``SmsNotSent``;
    a message the gateway did not take leaves no request behind (it would count against the phone).
    """
    db = request.app[DB]
    token, code, _email = await db.write(
        registration.start_phone_registration,
        tax_id,
        email_index,
        phone,
        time.time(),
        address=client_address(request),
        address_limit=request.app[CONFIG].sms.max_codes_per_address_per_hour,
    )
    text = render(lang_of(request), Msg("Your Portgate confirmation code is %(code)s", {"code": code}))
    try:
        await request.app[SMS].send(phone, text)
    except Exception:
        await db.write(registration.drop_phone_registration, token)
        raise
    return token


async def finish_phone_registration(
    request: web.Request, token: str, code: str, form: Mapping[str, Any]
) -> dict[str, Any]:
    """The new account, once ``code`` matches the request's; raises ``ValidationFailed`` otherwise.

    The fields (and the code's shape) are checked before the code itself, so a typo in a password or
    a code that is not 4 digits does not spend one of the request's few attempts. The code proves
    the phone, not the company: only the company's own phone on file makes the account active at
    once; any other phone gets an account that awaits approval.
    """
    db = request.app[DB]
    now = time.time()
    pending = await db.read(registration.phone_registration, token, now)
    errors = FieldErrors()
    if not (len(code) == 4 and code.isdigit()):  # a typo, not a guess: it spends no attempt
        errors.add("code", ENTER_CODE)
    try:
        clean = registration.validate_finish(form, request.app[CONFIG].security.password_min_length, pending["email"])
    except ValidationFailed as exc:
        errors.update(exc.errors)
    errors.raise_if_any()
    record = await db.write(registration.check_phone_code, token, code, now)
    if record is None:
        raise ValidationFailed({"code": WRONG_CODE})
    proven = await db.read(registration.phone_is_on_file, record["company_id"], record["phone"])
    user = await db.write(
        registration.finish_existing_registration,
        record,
        clean,
        hash_password(clean["password"]),
        lang_of(request),
        now,
        record["phone"],
        proven=proven,
    )
    if user["status"] == "pending":
        # The real owner of the address on file learns of it, and can object.
        await mail_registration_received(request, user, lang_of(request))
    return user
