"""An existing customer's registration with a texted 4-digit code: one path for the API and the pages.

RFC → one of the e-mails on file (masked) → a phone that gets the code → the code and a password.
The rules and the SQL are in :mod:`server.accounts.registration`; this joins them to the SMS sender.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from server.accounts import registration
from server.accounts.registration import TooManyCodes
from server.forms import FieldErrors, ValidationFailed
from server.i18n import N_, Msg, render
from server.mail import Mail
from server.mail_outbox import write_with_mail
from server.security import hash_password_off_loop
from server.web import CONFIG, DB, SMS, ApiError, client_address, lang_of

TOO_MANY_CODES = Msg("Too many codes were sent to this phone. Try again in an hour.")
TOO_MANY_FROM_ADDRESS = Msg("Too many codes were requested from your network. Try again in an hour.")
SMS_NOT_SENT = Msg("The text message could not be sent. Try again in a few minutes.")
WRONG_CODE = Msg("The confirmation code is not correct.")
ENTER_CODE = Msg("Enter the 4 digits of the code we texted you.")
TOO_MANY_MISSES = Msg(
    "Too many wrong codes were entered for this phone or company today. Try again tomorrow, "
    "or register with a link sent to your e-mail."
)


def _too_many_misses() -> ApiError:
    return ApiError(429, "too_many_codes", TOO_MANY_MISSES)


async def text_registration_code(request: web.Request, tax_id: str, email_index: int, phone: str) -> str:
    """Start the registration and text its code to ``phone``; returns the request's token.

    Raises ``UnknownTaxId``, ``ValidationFailed`` (``email_index``), ``TooManyCodes`` (per phone or
    address), ``ApiError`` 429 (too many wrong codes today) or ``SmsNotSent``; a message that did not
    leave, for whatever reason, leaves no request behind (it would count against the phone).
    """
    db = request.app[DB]
    try:
        token, code, _email = await db.write(
            registration.start_phone_registration,
            tax_id,
            email_index,
            phone,
            time.time(),
            address=client_address(request),
            address_limit=request.app[CONFIG].sms.max_codes_per_address_per_hour,
        )
    except TooManyCodes as exc:
        if exc.per == "misses":
            raise _too_many_misses() from None
        raise
    text = render(lang_of(request), Msg("Your Portgate confirmation code is %(code)s", {"code": code}))
    sent = False
    try:
        await request.app[SMS].send(phone, text)
        sent = True
    finally:
        if not sent:  # a refusal, or the request cancelled mid-send (a client gone, a shutdown)
            await asyncio.shield(db.write(registration.drop_phone_registration, token))
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
    try:
        record = await db.write(registration.check_phone_code, token, code, now)
    except TooManyCodes:
        raise _too_many_misses() from None
    if record is None:
        raise ValidationFailed({"code": WRONG_CODE})
    proven = await db.read(registration.phone_is_on_file, record["company_id"], record["phone"])
    password_hash, lang = await hash_password_off_loop(clean["password"]), lang_of(request)
    support = request.app[CONFIG].support_email
    return await write_with_mail(
        request.app,
        registration.finish_existing_registration,
        record,
        clean,
        password_hash,
        lang,
        now,
        record["phone"],
        # Active or not, the owner of the address on file learns of the account, and can object.
        mail=lambda user: [_new_account_mail(user, record["phone"], lang, support)],
        proven=proven,
    )


NEW_ACCOUNT_SUBJECT = Msg("Portgate: a new account uses your e-mail address")
PENDING_ACCOUNT_SUBJECT = Msg("Portgate: registration received")  # as for every account that awaits approval
NEW_ACCOUNT_BODY = N_(
    "Hello,\n\nA Portgate account for %(company)s was created with this e-mail address (user name "
    "%(username)s, name %(name)s), confirmed with a code texted to the phone ending in %(phone_end)s. "
    "%(status)s\n\nIf it was not you, write to %(support)s at once so that we can close it.\n\n"
    "This message was sent automatically; please do not reply."
)
ACCOUNT_ACTIVE = Msg("It can be used at once.")
ACCOUNT_PENDING = Msg("It awaits approval (within 24 hours); we will write to you when it is approved.")


def _new_account_mail(user: Mapping[str, Any], phone: str, lang: str, support: str) -> Mail:
    """Tell the chosen address of its new account, in the registrant's language: the code proved a
    phone, not the mailbox, so its owner must hear of it whether the account is active or pending."""
    body = Msg(
        NEW_ACCOUNT_BODY,
        {
            "company": user["company_name"],
            "username": user["username"],
            "name": user["full_name"],
            "phone_end": phone[-4:],
            "status": ACCOUNT_ACTIVE if user["status"] == "active" else ACCOUNT_PENDING,
            "support": support,
        },
    )
    subject = NEW_ACCOUNT_SUBJECT if user["status"] == "active" else PENDING_ACCOUNT_SUBJECT
    return Mail(user["email"], render(lang, subject), render(lang, body))
