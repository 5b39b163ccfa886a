"""JSON API for accounts (``/api/v1``): bearer-token login, profiles, password, registration."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from server import forms
from server.accounts import passwords, registration, sessions
from server.accounts.common import (
    NOT_A_ROBOT,
    RESET_SENT,
    change_own_password,
    human_passed,
    login_refusal,
    register_and_notify,
    register_prospect_and_notify,
    require_person,
    sign_in,
    start_password_reset,
    tax_id_unknown_message,
)
from server.accounts.registration import TooManyCodes
from server.accounts.registration_sms import (
    SMS_NOT_SENT,
    TOO_MANY_CODES,
    TOO_MANY_FROM_ADDRESS,
    finish_phone_registration,
    text_registration_code,
)
from server.accounts.users import ROLE_LABELS, UnknownTaxId
from server.forms import FieldErrors, ValidationFailed
from server.i18n import Msg, pick_language, render
from server.sms import SmsNotSent
from server.web import (
    CONFIG,
    DB,
    HUMAN_CHECK,
    ApiError,
    client_address,
    json_body,
    lang_of,
    require,
)

routes = web.RouteTableDef()


async def _require_human(request: web.Request, body: dict[str, Any]) -> None:
    """The API's human check (``human_token``/``human_answer``, or a hosted captcha's response)."""
    if not await human_passed(request, body):
        raise ApiError(400, "human_check_failed", NOT_A_ROBOT)


@routes.get("/api/v1/human-check")
async def human_check(request: web.Request) -> web.Response:
    return web.json_response(request.app[HUMAN_CHECK].challenge())


@routes.post("/api/v1/auth/login")
async def api_login(request: web.Request) -> web.Response:
    body = await json_body(request)
    errors = FieldErrors()
    login = forms.text(body, "login", errors, max_len=254)
    given = body.get("password")
    password = given if isinstance(given, str) else ""
    if not password:
        errors.add("password", forms.REQUIRED)
    errors.raise_if_any()
    await _require_human(request, body)
    outcome = await sign_in(request, login, password[:256], _api_session(request, body))
    if outcome.status == "choose":
        accounts = [{"index": i, "masked": masked} for i, masked in enumerate(outcome.choices)]
        return web.json_response({"choice_token": outcome.choice_token, "accounts": accounts})
    return await _session_or_refusal(request, outcome, body)


@routes.post("/api/v1/auth/login/choose")
async def api_login_choose(request: web.Request) -> web.Response:
    """After a login by a tax id that several accounts share with that password: which account."""
    body = await json_body(request)
    errors = FieldErrors()
    token = forms.text(body, "choice_token", errors, max_len=100)
    index = forms.integer(body, "index", errors, minimum=0, maximum=99) if "index" in body else None
    typed = forms.text(body, "login", errors, max_len=254, required=index is None)
    errors.raise_if_any()
    outcome = await request.app[DB].write(
        sessions.choose_login, token, index, typed, client_address(request), time.time(), _api_session(request, body)
    )
    return await _session_or_refusal(request, outcome, body)


def _api_session(request: web.Request, body: dict[str, Any]) -> sessions.NewSession:
    """The API session a sign-in opens; a ``language`` in the body becomes the account's."""
    language = pick_language(str(body.get("language", "")), default="") or None
    return sessions.NewSession("api", request.app[CONFIG].security.session_hours, language)


#: The status of each refused sign-in.
_REFUSAL_STATUS = {
    "wrong_credentials": 401,
    "pending": 403,
    "rejected": 403,
    "too_many_accounts": 400,
    "choice_expired": 400,
    "not_among_choices": 400,
}


async def _session_or_refusal(
    request: web.Request, outcome: sessions.LoginOutcome, body: dict[str, Any]
) -> web.Response:
    """A new API session with the account's profiles, or the refusal's status and message."""
    security = request.app[CONFIG].security
    now = time.time()
    if outcome.user is None:
        status = _REFUSAL_STATUS.get(outcome.status, 429)
        raise ApiError(status, outcome.status, login_refusal(outcome, security.login_lock_minutes, now))
    language = pick_language(str(body.get("language", "")), default=outcome.user["language"])
    profiles = await request.app[DB].read(sessions.profiles_of, outcome.user["id"])
    return web.json_response(
        {
            "token": outcome.session_token,
            "expires_in": security.session_hours * 3600,
            "profiles": [_profile_json(p, language) for p in profiles],
        }
    )


def _profile_json(profile: dict[str, Any], lang: str) -> dict[str, Any]:
    return {
        "id": profile["id"],
        "role": profile["role"],
        "role_label": render(lang, ROLE_LABELS.get(profile["role"], profile["role"])),
        "company_id": profile["company_id"],
        "company_name": profile["company_name"],
    }


@routes.post("/api/v1/auth/logout")
async def api_logout(request: web.Request) -> web.Response:
    principal = require(request, profile=False)
    await request.app[DB].write(sessions.end_session, principal.session_hash)
    return web.json_response({"ok": True})


@routes.get("/api/v1/me")
async def me(request: web.Request) -> web.Response:
    p = require(request, profile=False)
    return web.json_response(
        {
            "user_id": p.user_id,
            "username": p.username,
            "full_name": p.full_name,
            "email": p.email,
            "language": p.language,
            "profile": {"id": p.profile_id, "role": p.role, "company_id": p.company_id, "company_name": p.company_name}
            if p.role
            else None,
        }
    )


@routes.get("/api/v1/profiles")
async def profiles(request: web.Request) -> web.Response:
    p = require(request, profile=False)
    rows = await request.app[DB].read(sessions.profiles_of, p.user_id)
    return web.json_response({"profiles": [_profile_json(r, lang_of(request)) for r in rows]})


@routes.post("/api/v1/profiles/select")
async def select(request: web.Request) -> web.Response:
    p = require_person(request, profile=False)
    body = await json_body(request)
    errors = FieldErrors()
    profile_id = forms.integer(body, "profile_id", errors, minimum=1, maximum=2**62)
    errors.raise_if_any()
    chosen = await request.app[DB].write(sessions.select_profile, p.session_hash, p.user_id, profile_id)
    if chosen is None:
        raise ApiError(404, "not_found", Msg("Choose one of your profiles."))
    return web.json_response(
        {"profile": {"id": chosen["id"], "role": chosen["role"], "company_name": chosen["company_name"]}}
    )


@routes.post("/api/v1/password")
async def change_password(request: web.Request) -> web.Response:
    p = require_person(request, profile=False)
    body = await json_body(request)
    errors = FieldErrors()
    given = body.get("current_password")
    current = given if isinstance(given, str) else ""
    if not current:
        errors.add("current_password", forms.REQUIRED)
    try:
        new = passwords.validate_new_password(
            body, request.app[CONFIG].security.password_min_length, p.username, p.email
        )
    except ValidationFailed as exc:
        errors.update(exc.errors)
    errors.raise_if_any()
    if not await change_own_password(request, p, current, new):
        raise ApiError(
            400,
            "invalid",
            Msg("Some fields are not valid."),
            {"current_password": Msg("The current password is not correct.")},
        )
    return web.json_response({"ok": True})


# --- registration of an existing customer (mobile flow with a 4-digit SMS code) ----------------


@routes.post("/api/v1/registration/lookup")
async def registration_lookup(request: web.Request) -> web.Response:
    body = await json_body(request)
    errors = FieldErrors()
    tax = forms.tax_id(body, "tax_id", errors)
    errors.raise_if_any()
    emails = await request.app[DB].read(registration.masked_emails, tax)
    if emails is None:
        raise ApiError(
            404, "unknown_tax_id", tax_id_unknown_message(request), {"tax_id": tax_id_unknown_message(request)}
        )
    return web.json_response({"tax_id": tax, "emails": [{"index": i, "masked": e} for i, e in enumerate(emails)]})


@routes.post("/api/v1/registration/phone")
async def registration_phone(request: web.Request) -> web.Response:
    body = await json_body(request)
    errors = FieldErrors()
    tax = forms.tax_id(body, "tax_id", errors)
    index = forms.integer(body, "email_index", errors, minimum=0, maximum=99)
    phone = forms.phone(body, "phone", errors)
    errors.raise_if_any()
    assert index is not None  # a missing one is a field error above
    # Each call sends a text message: a person must ask for it, not a script (cost, and spam to
    # someone else's phone), on top of the limit per phone.
    await _require_human(request, body)
    try:
        token = await text_registration_code(request, tax, index, phone)
    except UnknownTaxId:
        raise ApiError(404, "unknown_tax_id", tax_id_unknown_message(request)) from None
    except TooManyCodes as exc:
        if exc.per == "address":
            raise ApiError(429, "too_many_codes", TOO_MANY_FROM_ADDRESS) from None
        raise ApiError(429, "too_many_codes", TOO_MANY_CODES, {"phone": TOO_MANY_CODES}) from None
    except SmsNotSent:
        raise ApiError(503, "sms_not_sent", SMS_NOT_SENT, {"phone": SMS_NOT_SENT}) from None
    return web.json_response({"request_token": token, "expires_in": registration.PHONE_CODE_MINUTES * 60})


@routes.post("/api/v1/registration/complete")
async def registration_complete(request: web.Request) -> web.Response:
    body = await json_body(request)
    errors = FieldErrors()
    token = forms.text(body, "request_token", errors, max_len=100)
    code = forms.text(body, "code", errors, max_len=4)
    errors.raise_if_any()
    user = await finish_phone_registration(request, token, code, body)
    return web.json_response(
        {"user_id": user["id"], "username": user["username"], "email": user["email"], "status": user["status"]},
        status=201,
    )


@routes.post("/api/v1/registration")
async def api_register(request: web.Request) -> web.Response:
    """Self-registration, the same rules as the web form; the account then awaits approval."""
    body = await json_body(request)
    clean = registration.validate_registration(body, request.app[CONFIG].security.password_min_length)
    await _require_human(request, body)
    try:
        user = await register_and_notify(request, clean)
    except UnknownTaxId:
        msg = tax_id_unknown_message(request)
        raise ApiError(400, "unknown_tax_id", msg, {"tax_id": msg}) from None
    return web.json_response({"user_id": user["id"], "status": "pending"}, status=201)


@routes.post("/api/v1/registration/prospect")
async def api_register_prospect(request: web.Request) -> web.Response:
    """A company that is not a customer yet: the same rules and mail as the page; the account awaits approval."""
    body = await json_body(request)
    clean = registration.validate_prospect(body)
    await _require_human(request, body)
    user = await register_prospect_and_notify(request, clean)
    return web.json_response({"user_id": user["id"], "username": user["username"], "status": "pending"}, status=201)


@routes.post("/api/v1/password/forgot")
async def api_forgot_password(request: web.Request) -> web.Response:
    """Mail a link to choose a new password; the same answer whether or not the address has an account."""
    body = await json_body(request)
    errors = FieldErrors()
    email = forms.email(body, "email", errors)
    errors.raise_if_any()
    await _require_human(request, body)
    await start_password_reset(request, email)
    return web.json_response({"ok": True, "message": render(lang_of(request), RESET_SENT)}, status=202)
