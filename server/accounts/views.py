"""Account pages: login, profiles, registration flows, passwords, approval queue, billing registry."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from aiohttp import web

from server.accounts import service
from server.accounts.service import UnknownTaxId
from server.csv_import import import_upload
from server.forms import FieldErrors, ValidationFailed
from server.i18n import LANGUAGES, N_, Msg, pick_language, translate
from server.security import hash_password
from server.web import (
    CONFIG,
    DB,
    HUMAN_CHECK,
    LANG,
    LANG_COOKIE,
    MAILER,
    SESSION_COOKIE,
    ApiError,
    client_address,
    lang_of,
    not_found,
    parse_id,
    principal_of,
    render_page,
    require,
    set_cookie,
)

routes = web.RouteTableDef()


page = render_page


def safe_next(value: str | None) -> str:
    """Only same-site paths are followed after login (no open redirect)."""
    # Browsers drop tabs and newlines from URLs, so "/\t/evil.example" would become "//evil.example".
    if (
        value
        and value.startswith("/")
        and not value.startswith("//")
        and "\\" not in value
        and value.isprintable()
        and " " not in value
    ):
        return value
    return "/home"


async def send_mail(request: web.Request, to: str, lang: str, subject: str, body: str, params: dict[str, Any]) -> None:
    await request.app[MAILER].send(to, translate(lang, subject) % params, translate(lang, body) % params)


async def mail_registration_received(request: web.Request, user: dict[str, Any], lang: str) -> None:
    await send_mail(
        request,
        user["email"],
        lang,
        N_("Portgate: registration received"),
        N_(
            "Hello %(name)s,\n\nYour registration for %(company)s was received successfully. "
            "Your account is awaiting approval, which takes up to 24 hours; we will write to you "
            "when it is approved.\n\nThis message was sent automatically; please do not reply."
        ),
        {"name": user["full_name"], "company": user["company_name"]},
    )


def tax_id_unknown_message(request: web.Request) -> Msg:
    return Msg(
        "The tax id (RUC/RFC) you entered is not in our billing system. For help, write to %(email)s.",
        {"email": request.app[CONFIG].support_email},
    )


def human_challenge(request: web.Request) -> dict[str, Any]:
    """A fresh human check for a form; a hosted widget also gets its provider's script URL."""
    challenge = request.app[HUMAN_CHECK].challenge()
    if challenge.get("kind") == "hosted" and not challenge.get("script"):
        challenge["script"] = request.app[CONFIG].security.hosted_captcha_script
    return challenge


# --- language, login, logout ------------------------------------------------------------------


@routes.get("/lang/{lang}", name="set_language")
async def set_language(request: web.Request) -> web.Response:
    lang = pick_language(request.match_info["lang"], default="")
    if not lang:
        raise not_found()
    response = web.HTTPFound(safe_next(request.query.get("next")))
    set_cookie(request, response, LANG_COOKIE, lang, max_age=365 * 86400)
    principal = principal_of(request)
    if principal:
        await request.app[DB].write(service.set_language, principal.user_id, lang)
    raise response


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    raise web.HTTPFound("/home" if principal_of(request) else "/login")


def _login_context(request: web.Request, **extra: Any) -> dict[str, Any]:
    return {
        "human": human_challenge(request),
        "next": request.query.get("next", ""),
        "languages": LANGUAGES,
        **extra,
    }


@routes.get("/login", name="login")
async def login_form(request: web.Request) -> web.Response:
    if principal_of(request):
        raise web.HTTPFound("/home")
    return page(request, "login.html", _login_context(request, values={}))


@routes.post("/login")
async def login_submit(request: web.Request) -> web.Response:
    form = await request.post()
    cfg = request.app[CONFIG]
    lang = pick_language(str(form.get("language", "")), default=lang_of(request))
    request[LANG] = lang
    errors = FieldErrors()
    login = str(form.get("login", "")).strip()[:254]
    password = str(form.get("password", ""))[:256]
    if not login:
        errors.add("login", Msg("This field is required."))
    if not password:
        errors.add("password", Msg("This field is required."))
    values = {"login": login, "language": lang}
    next_url = str(form.get("next", ""))
    if errors:
        return page(request, "login.html", _login_context(request, errors=errors, values=values, next=next_url), 400)
    if not await request.app[HUMAN_CHECK].verify(form, client_address(request)):
        return page(
            request,
            "login.html",
            _login_context(
                request,
                values=values,
                next=next_url,
                notice=Msg("Please confirm you are not a robot: the verification was not passed."),
            ),
            400,
        )
    outcome = await request.app[DB].write(
        service.login_check,
        login,
        password,
        client_address(request),
        time.time(),
        max_account=cfg.security.login_max_failures_per_account,
        max_address=cfg.security.login_max_failures_per_address,
        lock_minutes=cfg.security.login_lock_minutes,
    )
    if outcome.status != "ok":
        return page(
            request,
            "login.html",
            _login_context(
                request, values=values, next=next_url, notice=login_refusal(outcome, cfg.security.login_lock_minutes)
            ),
            429 if outcome.status in ("locked", "address_throttled") else 401,
        )
    token = await request.app[DB].write(
        service.create_session, outcome.user["id"], "web", cfg.security.session_hours, time.time(), lang
    )
    response = web.HTTPFound(f"/profiles?next={quote(safe_next(next_url))}")
    set_cookie(request, response, SESSION_COOKIE, token, max_age=cfg.security.session_hours * 3600)
    set_cookie(request, response, LANG_COOKIE, lang, max_age=365 * 86400)
    raise response


def login_refusal(outcome: service.LoginOutcome, lock_minutes: int) -> Msg:
    if outcome.status == "pending":
        return Msg("Your account is awaiting approval. You will receive an e-mail when it is approved.")
    if outcome.status == "rejected":
        return Msg("Your account is not enabled. Contact support.")
    if outcome.status == "locked":
        minutes = max(1, round((outcome.locked_until - time.time()) / 60))
        return Msg("Too many failed attempts: this account is locked for %(minutes)s minutes.", {"minutes": minutes})
    if outcome.status == "address_throttled":
        return Msg(
            "Too many failed attempts from your address. Try again in %(minutes)s minutes.", {"minutes": lock_minutes}
        )
    return Msg("Wrong user name or password.")


@routes.post("/logout")
async def logout(request: web.Request) -> web.Response:
    principal = require(request, profile=False)
    await request.app[DB].write(service.end_session, principal.session_hash)
    response = web.HTTPFound("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


# --- profiles and home ------------------------------------------------------------------------


@routes.get("/profiles")
async def profiles_form(request: web.Request) -> web.Response:
    principal = require(request, profile=False)
    profiles = await request.app[DB].read(service.profiles_of, principal.user_id)
    return page(
        request,
        "profiles.html",
        {"profiles": profiles, "role_labels": service.ROLE_LABELS, "next": request.query.get("next", "")},
    )


@routes.post("/profiles")
async def profiles_submit(request: web.Request) -> web.Response:
    principal = require(request, profile=False)
    form = await request.post()
    profile_id = parse_id(form.get("profile_id")) or 0
    chosen = await request.app[DB].write(service.select_profile, principal.session_hash, principal.user_id, profile_id)
    if chosen is None:
        profiles = await request.app[DB].read(service.profiles_of, principal.user_id)
        return page(
            request,
            "profiles.html",
            {"profiles": profiles, "role_labels": service.ROLE_LABELS, "notice": Msg("Choose one of your profiles.")},
            400,
        )
    raise web.HTTPFound(safe_next(str(form.get("next", ""))))


@routes.get("/home")
async def home(request: web.Request) -> web.Response:
    require(request)
    return page(request, "home.html")


# --- password ---------------------------------------------------------------------------------


@routes.get("/password")
async def password_form(request: web.Request) -> web.Response:
    require(request, profile=False)
    return page(request, "password.html")


@routes.post("/password")
async def password_submit(request: web.Request) -> web.Response:
    principal = require(request, profile=False)
    form = await request.post()
    cfg = request.app[CONFIG]
    current = str(form.get("current_password", ""))
    try:
        errors = FieldErrors()
        if not current:
            errors.add("current_password", Msg("This field is required."))
        try:
            new = service.validate_new_password(
                form, cfg.security.password_min_length, principal.username, principal.email
            )
        except ValidationFailed as exc:
            errors.update(exc.errors)
        errors.raise_if_any()
    except ValidationFailed as exc:
        return page(request, "password.html", {"errors": exc.errors}, 400)
    ok = await request.app[DB].write(
        service.change_password, principal.user_id, current, hash_password(new), principal.session_hash, time.time()
    )
    if not ok:
        return page(
            request, "password.html", {"errors": {"current_password": Msg("The current password is not correct.")}}, 400
        )
    return page(request, "password.html", {"success": Msg("Your password has been changed.")})


@routes.get("/password/forgot")
async def forgot_form(request: web.Request) -> web.Response:
    return page(request, "forgot.html", {"human": human_challenge(request)})


@routes.post("/password/forgot")
async def forgot_submit(request: web.Request) -> web.Response:
    form = await request.post()
    errors = FieldErrors()
    from server import forms

    email = forms.email(form, "email", errors)
    if errors:
        return page(request, "forgot.html", {"errors": errors, "human": human_challenge(request)}, 400)
    if not await request.app[HUMAN_CHECK].verify(form, client_address(request)):
        return page(
            request,
            "forgot.html",
            {
                "human": human_challenge(request),
                "notice": Msg("Please confirm you are not a robot: the verification was not passed."),
            },
            400,
        )
    found = await request.app[DB].write(service.start_password_reset, email, time.time())
    if found:
        user, token = found
        link = f"{request.app[CONFIG].public_url}/password/reset?token={token}"
        await send_mail(
            request,
            email,
            user["language"],
            N_("Portgate: reset your password"),
            N_(
                "Hello %(name)s,\n\nTo choose a new password open this link (valid for one hour):\n"
                "%(link)s\n\nIf you did not ask for it, ignore this message."
            ),
            {"name": user["full_name"], "link": link},
        )
    # Same answer whether or not the address exists: nobody learns who has an account.
    return page(
        request,
        "message.html",
        {
            "message": Msg(
                "If the address belongs to an active account, we have sent it a link to choose a new password."
            )
        },
    )


def _invalid_link() -> ApiError:
    return ApiError(400, "invalid_link", Msg("This link is not valid or has expired."))


async def _token_page(request: web.Request, purpose: str) -> dict[str, Any]:
    token = request.query.get("token", "") if request.method == "GET" else str((await request.post()).get("token", ""))
    record = await request.app[DB].read(service.token_record, token, purpose, time.time())
    if record is None:
        raise _invalid_link()
    return {**record, "token": token}


@routes.get("/password/reset")
async def reset_form(request: web.Request) -> web.Response:
    record = await _token_page(request, "reset_password")
    return page(request, "reset.html", {"token": record["token"]})


@routes.get("/password/set")
async def set_form(request: web.Request) -> web.Response:
    record = await _token_page(request, "set_password")
    return page(request, "reset.html", {"token": record["token"], "action": "/password/set"})


@routes.post("/password/reset")
@routes.post("/password/set")
async def reset_submit(request: web.Request) -> web.Response:
    purpose = "reset_password" if request.path.endswith("reset") else "set_password"
    record = await _token_page(request, purpose)
    form = await request.post()
    user = await request.app[DB].read(service.user_by_id, record["user_id"])
    try:
        new = service.validate_new_password(
            form, request.app[CONFIG].security.password_min_length, user["username"], user["email"]
        )
    except ValidationFailed as exc:
        return page(
            request, "reset.html", {"token": record["token"], "errors": exc.errors, "action": request.path}, 400
        )
    if not await request.app[DB].write(service.finish_password_set, record, hash_password(new), time.time()):
        raise _invalid_link()  # used by a concurrent request, or voided by a newer link, since it was read
    return page(
        request,
        "message.html",
        {"message": Msg("Your password has been saved. You can now sign in."), "link": "/login"},
    )


# --- registration -----------------------------------------------------------------------------


def _registration_ctx(request: web.Request, **extra: Any) -> dict[str, Any]:
    return {"human": human_challenge(request), **extra}


@routes.get("/register")
async def register_form(request: web.Request) -> web.Response:
    return page(request, "register.html", _registration_ctx(request, values={}))


@routes.post("/register")
async def register_submit(request: web.Request) -> web.Response:
    form = await request.post()
    cfg = request.app[CONFIG]
    values = {
        k: str(form.get(k, ""))[:300] for k in ("full_name", "username", "email", "email_confirm", "tax_id", "phone")
    }
    try:
        clean = service.validate_registration(form, cfg.security.password_min_length)
    except ValidationFailed as exc:
        return page(request, "register.html", _registration_ctx(request, values=values, errors=exc.errors), 400)
    if not await request.app[HUMAN_CHECK].verify(form, client_address(request)):
        return page(
            request,
            "register.html",
            _registration_ctx(
                request,
                values=values,
                notice=Msg("Please confirm you are not a robot: the verification was not passed."),
            ),
            400,
        )
    lang = lang_of(request)
    try:
        user = await request.app[DB].write(
            service.register_user, clean, hash_password(clean["password"]), lang, client_address(request)
        )
    except UnknownTaxId:
        return page(
            request,
            "register.html",
            _registration_ctx(request, values=values, errors={"tax_id": tax_id_unknown_message(request)}),
            400,
        )
    except ValidationFailed as exc:
        return page(request, "register.html", _registration_ctx(request, values=values, errors=exc.errors), 400)
    await mail_registration_received(request, user, lang)
    raise web.HTTPFound("/register/done")


@routes.get("/register/done")
async def register_done(request: web.Request) -> web.Response:
    return page(
        request,
        "message.html",
        {
            "title": Msg("Registration received"),
            "message": Msg(
                "Your registration was successful. Your account awaits approval (within 24 hours); "
                "we have sent you an e-mail."
            ),
            "link": "/login",
        },
    )


@routes.get("/register/customer")
async def existing_form(request: web.Request) -> web.Response:
    return page(request, "register_customer.html", _registration_ctx(request, values={}))


@routes.post("/register/customer")
async def existing_submit(request: web.Request) -> web.Response:
    """Step 1 (tax id → masked e-mails on file) and step 2 (chosen e-mail → link sent)."""
    form = await request.post()
    from server import forms

    errors = FieldErrors()
    tax = forms.tax_id(form, "tax_id", errors)
    values = {"tax_id": str(form.get("tax_id", ""))[:30]}
    if errors:
        return page(request, "register_customer.html", _registration_ctx(request, values=values, errors=errors), 400)
    emails = await request.app[DB].read(service.masked_emails, tax)
    if emails is None:
        return page(
            request,
            "register_customer.html",
            _registration_ctx(request, values=values, errors={"tax_id": tax_id_unknown_message(request)}),
            400,
        )
    if "email_index" not in form:
        return page(
            request,
            "register_customer.html",
            {"values": {"tax_id": tax}, "emails": emails, "human": human_challenge(request)},
        )
    index = forms.integer(form, "email_index", errors, minimum=0, maximum=len(emails) - 1)
    if errors or index is None:
        return page(
            request,
            "register_customer.html",
            _registration_ctx(request, values={"tax_id": tax}, emails=emails, errors=errors),
            400,
        )
    if not await request.app[HUMAN_CHECK].verify(form, client_address(request)):
        return page(
            request,
            "register_customer.html",
            _registration_ctx(
                request,
                values={"tax_id": tax},
                emails=emails,
                notice=Msg("Please confirm you are not a robot: the verification was not passed."),
            ),
            400,
        )
    address, token = await request.app[DB].write(service.start_existing_registration, tax, index, time.time())
    link = f"{request.app[CONFIG].public_url}/register/finish?token={token}"
    await send_mail(
        request,
        address,
        lang_of(request),
        N_("Portgate: finish your registration"),
        N_(
            "Hello,\n\nTo finish creating your Portgate account open this link (valid for 24 hours):\n"
            "%(link)s\n\nIf you did not ask for it, ignore this message."
        ),
        {"link": link},
    )
    return page(
        request,
        "message.html",
        {"message": Msg("We have sent a link to %(email)s to finish your registration.", {"email": emails[index]})},
    )


@routes.get("/register/finish")
async def finish_form(request: web.Request) -> web.Response:
    record = await _token_page(request, "finish_registration")
    return page(request, "register_finish.html", {"token": record["token"], "email": record["email"], "values": {}})


@routes.post("/register/finish")
async def finish_submit(request: web.Request) -> web.Response:
    record = await _token_page(request, "finish_registration")
    form = await request.post()
    values = {k: str(form.get(k, ""))[:200] for k in ("full_name", "username")}
    ctx = {"token": record["token"], "email": record["email"], "values": values}
    try:
        clean = service.validate_finish(form, request.app[CONFIG].security.password_min_length, record["email"])
        await request.app[DB].write(
            service.finish_existing_registration,
            record,
            clean,
            hash_password(clean["password"]),
            lang_of(request),
            time.time(),
        )
    except ValidationFailed as exc:
        return page(request, "register_finish.html", {**ctx, "errors": exc.errors}, 400)
    return page(
        request, "message.html", {"message": Msg("Your account is ready. You can now sign in."), "link": "/login"}
    )


@routes.get("/register/prospect")
async def prospect_form(request: web.Request) -> web.Response:
    return page(request, "register_prospect.html", _registration_ctx(request, values={}))


@routes.post("/register/prospect")
async def prospect_submit(request: web.Request) -> web.Response:
    form = await request.post()
    names = ("company_name", "tax_id", "contact", "email", "email_confirm", "phone", "phone_confirm")
    values = {k: str(form.get(k, ""))[:300] for k in names}
    try:
        clean = service.validate_prospect(form)
    except ValidationFailed as exc:
        return page(
            request, "register_prospect.html", _registration_ctx(request, values=values, errors=exc.errors), 400
        )
    if not await request.app[HUMAN_CHECK].verify(form, client_address(request)):
        return page(
            request,
            "register_prospect.html",
            _registration_ctx(
                request,
                values=values,
                notice=Msg("Please confirm you are not a robot: the verification was not passed."),
            ),
            400,
        )
    try:
        user, token = await request.app[DB].write(service.register_prospect, clean, lang_of(request), time.time())
    except ValidationFailed as exc:
        return page(
            request, "register_prospect.html", _registration_ctx(request, values=values, errors=exc.errors), 400
        )
    link = f"{request.app[CONFIG].public_url}/password/set?token={token}"
    await send_mail(
        request,
        user["email"],
        lang_of(request),
        N_("Portgate: registration received"),
        N_(
            "Hello %(name)s,\n\nYour registration was received. Your user name is %(username)s; choose "
            "your password here (valid for 72 hours):\n%(link)s\n\nYour account awaits approval, "
            "which takes up to 24 hours."
        ),
        {"name": user["contact"], "username": user["username"], "link": link},
    )
    raise web.HTTPFound("/register/done")


# --- admin: approvals and audit ---------------------------------------------------------------


@routes.get("/admin/registrations")
async def registrations(request: web.Request) -> web.Response:
    require(request, "admin")
    pending = await request.app[DB].read(service.pending_registrations)
    return page(request, "registrations.html", {"pending": pending})


@routes.post(r"/admin/registrations/{user_id:\d+}/{decision:approve|reject}")
async def decide(request: web.Request) -> web.Response:
    principal = require(request, "admin")
    approve = request.match_info["decision"] == "approve"
    user_id = parse_id(request.match_info["user_id"])
    user = None
    if user_id is not None:
        user = await request.app[DB].write(service.decide_registration, principal.user_id, user_id, approve)
    if user is None:
        raise ApiError(404, "not_found", Msg("This registration was already decided or does not exist."))
    login_url = f"{request.app[CONFIG].public_url}/login"
    if approve:
        await send_mail(
            request,
            user["email"],
            user["language"],
            N_("Portgate: your account is approved"),
            N_("Hello %(name)s,\n\nYour account %(username)s has been approved. Sign in at %(link)s"),
            {"name": user["full_name"], "username": user["username"], "link": login_url},
        )
    else:
        await send_mail(
            request,
            user["email"],
            user["language"],
            N_("Portgate: your registration was not approved"),
            N_("Hello %(name)s,\n\nYour registration could not be approved. For help, write to %(email)s."),
            {"name": user["full_name"], "email": request.app[CONFIG].support_email},
        )
    raise web.HTTPFound("/admin/registrations")


@routes.get("/admin/audit")
async def audit_page(request: web.Request) -> web.Response:
    require(request, "admin")
    rows = await request.app[DB].read(service.recent_audit, 200)
    return page(request, "audit.html", {"rows": rows})


# --- billing registry -------------------------------------------------------------------------


async def _companies_page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    search = request.query.get("q", "")[:100]
    rows = await request.app[DB].read(service.list_companies, search=search)
    return page(request, "companies.html", {"companies": rows, "q": search, "values": {}, **extra}, status)


@routes.get("/billing/companies")
async def companies(request: web.Request) -> web.Response:
    require(request, "billing_clerk", "admin")
    return await _companies_page(request)


@routes.post("/billing/companies")
async def company_save(request: web.Request) -> web.Response:
    principal = require(request, "billing_clerk", "admin")
    form = await request.post()
    try:
        await request.app[DB].write(service.save_company, form, actor_id=principal.user_id)
    except ValidationFailed as exc:
        values = {k: str(form.get(k, ""))[:300] for k in ("tax_id", "name", "emails", "phone")}
        return await _companies_page(request, 400, errors=exc.errors, values=values)
    return await _companies_page(request, success=Msg("Company saved."))


@routes.post("/billing/companies/import")
async def company_import(request: web.Request) -> web.Response:
    principal = require(request, "billing_clerk", "admin")
    result = await import_upload(
        request, request.app[DB], service.parse_companies_csv, service.save_companies, principal.user_id
    )
    if isinstance(result, Msg):
        return await _companies_page(request, 400, import_error=result)
    return await _companies_page(
        request,
        success=Msg(
            "Imported: %(added)s added, %(updated)s updated.", {"added": result.added, "updated": result.updated}
        ),
    )
