"""Signing in and out, the language, the profile a session acts as, and the home page."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from aiohttp import web

from server.accounts import sessions
from server.accounts.common import (
    NOT_A_ROBOT,
    human_challenge,
    human_passed,
    login_refusal,
    page,
    safe_next,
    sign_in,
)
from server.accounts.sessions import NewSession
from server.accounts.users import ROLE_LABELS
from server.flash import render_with_flash
from server.forms import FieldErrors
from server.i18n import LANGUAGES, Msg, pick_language
from server.web import (
    CONFIG,
    DB,
    LANG,
    LANG_COOKIE,
    SESSION_COOKIE,
    client_address,
    lang_of,
    not_found,
    parse_id,
    principal_of,
    require,
    set_cookie,
)

routes = web.RouteTableDef()


@routes.get("/lang/{lang}", name="set_language")
async def set_language(request: web.Request) -> web.Response:
    lang = pick_language(request.match_info["lang"], default="")
    if not lang:
        raise not_found()
    response = web.HTTPFound(safe_next(request.query.get("next")))
    set_cookie(request, response, LANG_COOKIE, lang, max_age=365 * 86400)
    principal = principal_of(request)
    if principal:
        await request.app[DB].write(sessions.set_language, principal.user_id, lang)
    raise response


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    raise web.HTTPFound("/home" if principal_of(request) else "/login")


def _login_page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    context = {"human": human_challenge(request), "next": request.query.get("next", ""), "languages": LANGUAGES}
    return render_with_flash(request, "accounts/login.html", {**context, **extra}, status)


@routes.get("/login", name="login")
async def login_form(request: web.Request) -> web.Response:
    if principal_of(request):
        raise web.HTTPFound("/home")
    return _login_page(request, values={})


@routes.post("/login")
async def login_submit(request: web.Request) -> web.Response:
    form = await request.post()
    lang = pick_language(str(form.get("language", "")), default=lang_of(request))
    request[LANG] = lang
    errors = FieldErrors()
    login = str(form.get("login", "")).strip()[:254]
    password = str(form.get("password", ""))[:256]
    if not login:
        errors.add("login", Msg("This field is required."))
    if not password:
        errors.add("password", Msg("This field is required."))
    shown: dict[str, Any] = {"values": {"login": login, "language": lang}, "next": str(form.get("next", ""))}
    if errors:
        return _login_page(request, 400, errors=errors, **shown)
    if not await human_passed(request, form):
        return _login_page(request, 400, notice=NOT_A_ROBOT, **shown)
    security = request.app[CONFIG].security
    outcome = await sign_in(request, login, password, NewSession("web", security.session_hours, lang))
    if outcome.status == "choose":
        return _login_page(request, choice=outcome, **shown)
    return await _signed_in_or_refused(request, outcome, lang, shown)


@routes.post("/login/choose")
async def login_choose(request: web.Request) -> web.Response:
    """The second step of a sign-in by a tax id that several accounts share: which account."""
    form = await request.post()
    lang = pick_language(str(form.get("language", "")), default=lang_of(request))
    request[LANG] = lang
    account = str(form.get("account", ""))
    choice = int(account) if account.isdecimal() and len(account) < 3 else None
    outcome = await request.app[DB].write(
        sessions.choose_login,
        str(form.get("choice_token", ""))[:200],
        choice,
        str(form.get("typed_login", ""))[:254],
        client_address(request),
        time.time(),
        NewSession("web", request.app[CONFIG].security.session_hours, lang),
    )
    shown: dict[str, Any] = {"values": {"language": lang}, "next": str(form.get("next", ""))}
    return await _signed_in_or_refused(request, outcome, lang, shown)


async def _signed_in_or_refused(
    request: web.Request, outcome: sessions.LoginOutcome, lang: str, shown: dict[str, Any]
) -> web.Response:
    """A new session and the profile page for a signed-in account; else the login page saying why."""
    security = request.app[CONFIG].security
    now = time.time()
    if outcome.user is None:
        status = 429 if outcome.status in ("locked", "address_throttled") else 401
        return _login_page(request, status, notice=login_refusal(outcome, security.login_lock_minutes, now), **shown)
    response = web.HTTPFound(f"/profiles?next={quote(safe_next(shown['next']))}")
    set_cookie(request, response, SESSION_COOKIE, outcome.session_token, max_age=security.session_hours * 3600)
    set_cookie(request, response, LANG_COOKIE, lang, max_age=365 * 86400)
    raise response


@routes.post("/logout")
async def logout(request: web.Request) -> web.Response:
    principal = require(request, profile=False)
    await request.app[DB].write(sessions.end_session, principal.session_hash)
    response = web.HTTPFound("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    response.headers["Clear-Site-Data"] = '"cache", "storage"'  # the app's offline copies of this user's pages go too
    raise response


async def _profiles_page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    principal = require(request, profile=False)
    profiles = await request.app[DB].read(sessions.profiles_of, principal.user_id)
    return page(request, "accounts/profiles.html", {"profiles": profiles, "role_labels": ROLE_LABELS, **extra}, status)


@routes.get("/profiles")
async def profiles_form(request: web.Request) -> web.Response:
    return await _profiles_page(request, next=request.query.get("next", ""))


@routes.post("/profiles")
async def profiles_submit(request: web.Request) -> web.Response:
    principal = require(request, profile=False)
    form = await request.post()
    profile_id = parse_id(form.get("profile_id")) or 0
    chosen = await request.app[DB].write(sessions.select_profile, principal.session_hash, principal.user_id, profile_id)
    if chosen is None:
        return await _profiles_page(request, 400, notice=Msg("Choose one of your profiles."))
    raise web.HTTPFound(safe_next(str(form.get("next", ""))))


@routes.get("/home")
async def home(request: web.Request) -> web.Response:
    require(request)
    return page(request, "accounts/home.html")
