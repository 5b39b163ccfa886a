"""HTTP plumbing shared by every area: app keys, errors, middlewares, the signed-in principal.

``require(request, *roles)`` is the one authorisation helper: every handler that shows or changes
company data calls it and then passes ``principal.company_id`` down to the service, which filters
by it, so one company never sees another's objects.
"""

from __future__ import annotations

import logging
import secrets
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import aiohttp_jinja2
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from server.config import Config
from server.db import Database, DatabaseBusy, is_storage_failure, one
from server.forms import ValidationFailed, is_refused_value, load_storable_json, parse_id, refuse_unstorable_values
from server.human_check import HumanCheck
from server.i18n import Msg, accept_language, pick_language, render, translate
from server.mail import Mailer
from server.security import same_secret, token_hash
from server.sms import SmsSender

log = logging.getLogger(__name__)

CONFIG = web.AppKey("config", Config)
DB = web.AppKey("db", Database)
MAILER = web.AppKey("mailer", Mailer)
SMS = web.AppKey("sms", SmsSender)
HUMAN_CHECK = web.AppKey("human_check", HumanCheck)
HTTP = web.AppKey("http", aiohttp.ClientSession)
SECRET = web.AppKey("secret", str)

PRINCIPAL = web.RequestKey("principal", object)
LANG = web.RequestKey("lang", str)
NEW_CSRF = web.RequestKey("new_csrf", str)

SESSION_COOKIE = "pg_session"
CSRF_COOKIE = "pg_csrf"
LANG_COOKIE = "pg_lang"

STAFF_ROLES = ("billing_clerk", "operations", "gate_supervisor", "helpdesk_agent", "admin")
#: Who buys and uses gate tickets: the terminal's customers.
CUSTOMER_ROLES = ("customer", "customer_admin")
#: A company that is not a customer yet: the vendor portal's helpdesk, licences and policies, no gate tickets.
PROSPECT_ROLES = ("prospect",)
#: Everyone the vendor portal serves (helpdesk, licences, policies): customers and prospects.
PORTAL_CUSTOMER_ROLES = CUSTOMER_ROLES + PROSPECT_ROLES


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message", "fields"}}`` (API) or an error page."""

    def __init__(self, status: int, code: str, message: str | Msg, fields: Mapping[str, Msg] | None = None):
        super().__init__(str(message))
        self.status = status
        self.code = code
        self.message = message
        self.fields = dict(fields or {})


@dataclass(frozen=True)
class Principal:
    user_id: int
    username: str
    full_name: str
    email: str
    language: str
    session_hash: str
    csrf_token: str
    session_kind: str
    profile_id: int | None
    role: str | None
    company_id: int | None
    company_name: str | None
    #: Set when an integration token (not a person's session) is acting; see ``server.accounts.integrations``.
    integration_token_id: int | None = None

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def is_integration(self) -> bool:
        return self.integration_token_id is not None


def principal_of(request: web.Request) -> Principal | None:
    """The signed-in principal, if any (set by the session middleware)."""
    return request.get(PRINCIPAL)


def is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


#: The kiosk protocol: bearer-token calls that use no session, CSRF token or template.
GATE_API_PREFIX = "/api/v1/gate/"


def lang_of(request: web.Request) -> str:
    return request.get(LANG, "es")


def client_address(request: web.Request) -> str:
    return request.remote or "unknown"


def _error_payload(lang: str, code: str, message: str | Msg, fields: Mapping[str, Msg]) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": render(lang, message),
            "fields": {name: render(lang, msg) for name, msg in fields.items()},
        }
    }


def json_error(
    request: web.Request, status: int, code: str, message: str | Msg, fields: Mapping[str, Msg] | None = None
) -> web.Response:
    return web.json_response(_error_payload(lang_of(request), code, message, fields or {}), status=status)


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object, or a 400 with a clear message."""
    raw = await request_bytes(request)
    try:
        # What no column can store is refused here, for every handler; the kiosk protocol cleans its texts as
        # scanned input instead (refusing an upload would hold a kiosk's outbox), only its numbers are checked.
        gate = request.path.startswith(GATE_API_PREFIX)
        body = load_storable_json(raw.decode(request.charset or "utf-8"), numbers_only=gate)
    except (ValueError, LookupError, RecursionError) as exc:  # bad JSON, bad bytes, an unknown charset
        raise ApiError(400, "invalid_json", Msg("The request body is not valid JSON.")) from exc
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", Msg("The request body must be a JSON object."))
    return body


#: The content codings a request body may come in (``create_app`` turns aiohttp's own decoding off, so a
#: coding it cannot decode reaches us instead of being refused in plain text before any middleware runs).
_INFLATE_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
_UNREADABLE_BODY = Msg("The request body could not be read; send it again.")
_UNREADABLE_FORM = Msg("The form could not be read; send it again.")


def content_coding(request: web.Request) -> str:
    """The body's Content-Encoding, lower case; "" for none."""
    coding = request.headers.get("Content-Encoding", "").strip().lower()
    return "" if coding == "identity" else coding


async def request_bytes(request: web.Request) -> bytes:
    """The whole request body, inflated when it was sent gzip or deflate; a 4xx when it cannot be read."""
    coding = content_coding(request)
    if coding and coding not in _INFLATE_WBITS:
        raise ApiError(
            415, "unsupported_encoding", Msg("Send the request body uncompressed, or compressed with gzip or deflate.")
        )
    try:
        raw = await request.read()
    except web.RequestPayloadError as exc:  # cut short or malformed chunking
        raise ApiError(400, "bad_request", _UNREADABLE_BODY) from exc
    return _inflate(raw, _INFLATE_WBITS[coding], request.client_max_size) if coding else raw


def _inflate(raw: bytes, wbits: int, limit: int) -> bytes:
    """Decompress a body, never past ``limit`` bytes (a few KB of gzip can inflate to gigabytes)."""
    inflater = zlib.decompressobj(wbits)
    try:
        body = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise ApiError(400, "bad_request", _UNREADABLE_BODY) from exc
    if len(body) > limit:
        raise ApiError(413, "too_large", Msg("The request is too large."))
    if not inflater.eof or inflater.unused_data:
        raise ApiError(400, "bad_request", _UNREADABLE_BODY)
    return body


#: What the API says for aiohttp's own errors (unknown path, wrong method, body too large) in the
#: reader's language instead of aiohttp's English reason phrase.
_HTTP_MESSAGES = {
    404: Msg("Not found."),
    405: Msg("This method is not allowed on this address."),
    413: Msg("The request is too large."),
}

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


@web.middleware
async def error_middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
    """Turn every failure into a precise 4xx (JSON under /api/) or a plain 500 without internals."""
    try:
        if request.path.startswith(GATE_API_PREFIX):
            return await _gate_api(request)
        return await handler(request)
    except ApiError as exc:
        return _failure(request, exc.status, exc.code, exc.message, exc.fields)
    except ValidationFailed as exc:
        return _failure(request, 400, "invalid", Msg("Some fields are not valid."), exc.errors)
    except web.HTTPException as exc:
        if exc.status >= 400 and is_api(request):
            default_text = not exc.text or exc.text.startswith(str(exc.status)) or exc.status == 413
            message = _HTTP_MESSAGES.get(exc.status, exc.reason) if default_text else (exc.text or exc.reason)
            return json_error(request, exc.status, _HTTP_CODES.get(exc.status, "error"), message)
        if exc.status >= 400 and exc.content_type == "text/plain":
            message = render(lang_of(request), _HTTP_MESSAGES.get(exc.status, exc.reason))
            return _error_page(request, exc.status, message)
        raise
    except DatabaseBusy:
        # Another process held the database for longer than the busy timeout: try again shortly.
        log.warning("database busy on %s %s", request.method, request.path)
        return _unavailable(request, "busy", Msg("The server is busy; try again in a moment."), retry_after=1)
    except Exception as exc:
        if is_refused_value(exc):  # the transaction rolled back: nothing of the request was written
            log.warning("database refused a value on %s %s: %s", request.method, request.path, exc)
            message = Msg("Some of the data sent cannot be saved; check it and send it again.")
            return _failure(request, 400, "invalid", message)
        if is_storage_failure(exc):
            # Nothing was written (the transaction rolled back); the operator must free the disk.
            log.error("storage failure on %s %s: %s", request.method, request.path, exc)
            message = Msg("The server cannot save data right now (its storage is full or failing); try again later.")
            return _unavailable(request, "storage_unavailable", message, retry_after=30)
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _failure(request, 500, "internal", Msg("Internal error; it has been logged."))


def _failure(request: web.Request, status: int, code: str, message: str | Msg, fields: Any = None) -> web.Response:
    """A failed request's answer: the JSON error shape under /api/, elsewhere a page that names the fields."""
    if is_api(request):
        return json_error(request, status, code, message, fields)
    named = "".join(f" {name}: {render(lang_of(request), problem)}" for name, problem in (fields or {}).items())
    return _error_page(request, status, render(lang_of(request), message) + named)


def _unavailable(request: web.Request, code: str, message: Msg, retry_after: int) -> web.Response:
    """A 503 that says when to try again."""
    response = _failure(request, 503, code, message)
    response.headers["Retry-After"] = str(retry_after)
    return response


def base_context(request: web.Request) -> dict[str, Any]:
    """What every page template gets: language helpers, the principal, its menu, the CSRF token.

    Built only when a page is rendered (not by a per-request context processor), so API requests —
    the gate's hot path among them — never pay for it.
    """
    from server.accounts.users import ROLE_LABELS
    from server.menu import MENU

    lang = lang_of(request)
    principal = principal_of(request)

    def gettext(text: str, **params: Any) -> str:
        value = translate(lang, text)
        return value % params if params else value

    return {
        "lang": lang,
        "_": gettext,
        "t": lambda value: render(lang, value),
        "principal": principal,
        "menu": request.app[MENU].for_role(principal.role if principal else None),
        "csrf_token": csrf_token(request),
        "request_path": request.path_qs,
        "role_label": lambda role: ROLE_LABELS.get(role, role),
    }


def render_page(
    request: web.Request, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> web.Response:
    """Render a page template with the base context; pages are never cached (they show private data)."""
    response = aiohttp_jinja2.render_template(template, request, {**base_context(request), **(context or {})})
    response.set_status(status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _error_page(request: web.Request, status: int, message: str) -> web.Response:
    try:
        return render_page(request, "error.html", {"status": status, "message": message}, status)
    except Exception:  # noqa: BLE001 - the error page itself must never fail
        return web.Response(status=status, text=message)


async def _gate_api(request: web.Request) -> web.StreamResponse:
    """The kiosk protocol's short way past the other middlewares (every redeem takes it).

    It needs no session (kiosks authenticate by their own token cache), no CSRF check (bearer
    tokens) and no template context; the language comes out as on the long way, the security
    headers from ``add_security_headers`` as for every response.
    """
    request[PRINCIPAL] = None
    request[LANG] = pick_language(
        request.query.get("lang") if request.query_string else None,
        accept_language(request.headers.get("Accept-Language")),
        read_cookie(request, LANG_COOKIE),
        default=request.app[CONFIG].default_language,
    )
    _refuse_unstorable_parameters(request)
    return await request.match_info.handler(request)


def _refuse_unstorable_parameters(request: web.Request) -> None:
    """No handler ever sees a query or path value it could not store (refused in the reader's language)."""
    if request.query_string or request.match_info:
        refuse_unstorable_values([*request.query.items(), *request.match_info.items()])


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: every answer the app sends carries these, whichever way it was made.

    A signal rather than a middleware: redirects and errors raised past the middlewares (aiohttp's
    own 404/405/413, ``HTTPFound``), static files, error pages and JSON errors all pass through here.
    """
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    if request.path.startswith("/api/"):
        # JSON is never a document to render: nothing loads from it and nobody may frame it.
        headers.setdefault("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
    else:
        headers.setdefault("Content-Security-Policy", _content_security_policy(request.app[CONFIG]))


def _content_security_policy(config: Config) -> str:
    """Only our own origin, plus a hosted captcha provider's origin when one is configured."""
    extra = ""
    sec = config.security
    if sec.human_check == "hosted" and sec.hosted_captcha_script:
        parts = urlsplit(sec.hosted_captcha_script)
        extra = f" {parts.scheme}://{parts.netloc}"
    return (
        f"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'{extra}; "
        f"frame-src 'self'{extra}; connect-src 'self'{extra}; frame-ancestors 'none'; form-action 'self'"
    )


def _load_principal(db: Any, thash: str, kind: str, now: float) -> dict[str, Any] | None:
    return one(
        db,
        """
        SELECT s.token_hash, s.csrf_token, s.kind, s.profile_id, u.id AS user_id, u.username, u.full_name,
               u.email, u.language, u.status, p.role, p.company_id, c.name AS company_name
        FROM sessions s JOIN users u ON u.id = s.user_id
        LEFT JOIN profiles p ON p.id = s.profile_id AND p.user_id = u.id
        LEFT JOIN companies c ON c.id = p.company_id
        WHERE s.token_hash = ? AND s.kind = ? AND s.expires_at > ?
        """,
        (thash, kind, now),
    )


def _session_principal(row: Mapping[str, Any]) -> Principal:
    return Principal(
        user_id=row["user_id"],
        username=row["username"],
        full_name=row["full_name"],
        email=row["email"],
        language=row["language"],
        session_hash=row["token_hash"],
        csrf_token=row["csrf_token"],
        session_kind=row["kind"],
        profile_id=row["profile_id"] if row["role"] else None,
        role=row["role"],
        company_id=row["company_id"],
        company_name=row["company_name"],
    )


async def _integration_principal(request: web.Request, token: str) -> Principal | None:
    """The principal of an integration token in use; the use itself goes to the audit log."""
    from server.accounts.integrations import use_token  # the accounts area imports this module

    row = await request.app[DB].write(
        use_token, token, request.method, request.path[:300], client_address(request), time.time()
    )
    if row is None:
        return None
    return Principal(
        user_id=row["user_id"],
        username=row["username"],
        full_name=row["token_name"],
        email=row["email"],
        language=row["language"],
        session_hash="",
        csrf_token="",
        session_kind="integration",
        profile_id=None,
        role=row["role"],
        company_id=row["company_id"],
        company_name=row["company_name"],
        integration_token_id=row["token_id"],
    )


async def _bearer_principal(request: web.Request) -> Principal | None:
    """The API's caller by its bearer token: a session of the API, or an integration token."""
    auth = request.headers.get("Authorization", "")
    token = auth[7:].strip() if auth.startswith("Bearer ") else ""
    # A kiosk token (pgk_) is authenticated by the gate area from its own cache.
    if not token or len(token) >= 200 or token.startswith("pgk_"):
        return None
    if token.startswith("pgi_"):
        return await _integration_principal(request, token)
    return await _principal_of_session(request, token, "api")


async def _principal_of_session(request: web.Request, token: str, kind: str) -> Principal | None:
    row = await request.app[DB].read(_load_principal, token_hash(token), kind, time.time())
    return _session_principal(row) if row and row["status"] == "active" else None


@web.middleware
async def session_middleware(request: web.Request, handler):
    """Attach ``request["principal"]`` (cookie for pages, bearer token for the API) and the language."""
    principal = None
    if is_api(request):
        principal = await _bearer_principal(request)
    elif (cookie := read_cookie(request, SESSION_COOKIE)) and len(cookie) < 200:
        principal = await _principal_of_session(request, cookie, "web")
    request[PRINCIPAL] = principal
    request[LANG] = pick_language(
        request.query.get("lang") if is_api(request) else None,
        accept_language(request.headers.get("Accept-Language")) if is_api(request) else None,
        read_cookie(request, LANG_COOKIE),
        principal.language if principal else None,
        default=request.app[CONFIG].default_language,
    )
    _refuse_unstorable_parameters(request)
    return await handler(request)


async def form_body(request: web.Request) -> Any:
    """The request's form fields (urlencoded or multipart), or a 4xx when the body cannot be read.

    A malformed multipart body (a bad part header, no closing boundary), undecodable text, an
    unknown charset or a body cut short would otherwise escape aiohttp's parser as a 500. Forms are
    read as a stream by aiohttp (and again by handlers, from its cache), so they must come
    uncompressed; browsers never compress them.
    """
    if content_coding(request):
        raise ApiError(415, "unsupported_encoding", _UNREADABLE_FORM)
    try:
        form = await request.post()
    except (ValueError, LookupError, HttpProcessingError, web.RequestPayloadError) as exc:
        raise ApiError(400, "bad_request", _UNREADABLE_FORM) from exc
    refuse_unstorable_values(form.items())
    return form


def read_cookie(request: web.Request, name: str) -> str:
    """A cookie's value, or "" when it is not short printable ASCII (every cookie we set is).

    Header bytes that are not UTF-8 arrive as lone surrogates; echoed into a page they would fail
    its encoding, so such a value is treated as no cookie at all.
    """
    value = request.cookies.get(name, "") if "Cookie" in request.headers else ""
    return value if len(value) <= 200 and value.isascii() and value.isprintable() else ""


def set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str, **options: Any) -> None:
    """Set one of our cookies: script cannot read it, other sites do not send it, HTTPS-only when configured."""
    response.set_cookie(
        name,
        value,
        httponly=True,
        samesite="Lax",
        path="/",
        secure=request.app[CONFIG].security.cookie_secure,
        **options,
    )


def csrf_token(request: web.Request) -> str:
    """The token forms must echo: the session's own once signed in, else the visitor's CSRF cookie.

    Bound to the session, a token seen in one session (another tab's user, a fixed cookie) is
    worthless in another; before sign-in the double-submit cookie ties it to the browser.
    """
    principal = principal_of(request)
    if principal is not None:
        return principal.csrf_token
    token = read_cookie(request, CSRF_COOKIE) or request.get(NEW_CSRF)
    if not token:
        token = secrets.token_urlsafe(24)
        request[NEW_CSRF] = token
    return token


_CSRF_REFUSED = Msg("The form has expired or was not sent from this site. Reload the page and try again.")


@web.middleware
async def csrf_middleware(request: web.Request, handler):
    """Every state-changing form post must echo the visitor's CSRF token; the API uses bearer tokens."""
    if request.method in ("POST", "PUT", "PATCH", "DELETE") and not is_api(request):
        principal = principal_of(request)
        expected = principal.csrf_token if principal else read_cookie(request, CSRF_COOKIE)
        unreadable: Exception | None = None
        try:
            form = await form_body(request)
        except (ApiError, web.HTTPException) as exc:  # checked after the token: a forged post learns nothing
            form, unreadable = {}, exc
        except ValidationFailed as exc:  # read, but holding what cannot be stored: refused after the token too
            form, unreadable = await request.post(), exc
        sent = form.get("csrf_token", "") if isinstance(form.get("csrf_token", ""), str) else ""
        if not expected or not same_secret(expected, sent or request.headers.get("X-CSRF-Token", "")):
            raise ApiError(403, "csrf", _CSRF_REFUSED)
        if unreadable is not None:
            raise unreadable  # handlers would parse the same body again and fail the same way
    response = await handler(request)
    new = request.get(NEW_CSRF)
    if new and not read_cookie(request, CSRF_COOKIE):
        set_cookie(request, response, CSRF_COOKIE, new)
    return response


def require(request: web.Request, *roles: str, profile: bool = True) -> Principal:
    """The signed-in principal, who must have chosen a profile with one of ``roles`` (any if empty)."""
    principal: Principal | None = principal_of(request)
    if principal is None:
        if is_api(request):
            raise ApiError(401, "unauthorized", Msg("Sign in first."))
        raise web.HTTPFound(f"/login?next={request.path_qs}" if request.method == "GET" else "/login")
    if not profile:
        return principal
    if principal.role is None:
        if is_api(request):
            raise ApiError(403, "profile_required", Msg("Choose a profile first."))
        raise web.HTTPFound("/profiles")
    if roles and principal.role not in roles:
        raise ApiError(403, "forbidden", Msg("Your profile does not allow this."))
    return principal


def not_found() -> ApiError:
    """What every lookup of another company's object answers: it simply does not exist for you."""
    return ApiError(404, "not_found", Msg("Not found."))


def terminal_now(app: web.Application) -> datetime:
    """Now in the terminal's time zone (``Config.timezone``): its ``date()`` is the terminal's day, which
    "valid until" and "days left" count in; stored times are converted to UTC all the same."""
    return datetime.now(app[CONFIG].zone)


def int_param(request: web.Request, name: str, default: int, maximum: int, minimum: int = 0) -> int:
    """A whole-number query parameter from ``minimum`` to ``maximum``, or a 400 that names it."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(
            400, "invalid", Msg("Some fields are not valid."), {name: Msg("Enter a whole number.")}
        ) from None
    if not minimum <= value <= maximum:
        raise ApiError(
            400,
            "invalid",
            Msg("Some fields are not valid."),
            {name: Msg("Enter a number from %(min)s to %(max)s.", {"min": minimum, "max": maximum})},
        )
    return value


def path_id(request: web.Request, name: str = "id") -> int:
    """A database id from the URL; anything that cannot be one is simply not found."""
    value = parse_id(request.match_info[name])
    if value is None:
        raise not_found()
    return value
