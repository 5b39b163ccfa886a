"""One-shot messages carried across POST → redirect → GET, so Back and Refresh never re-submit a form.

A form post answers a redirect that sets a short-lived cookie holding the result (a message id with
its parameters, and what the next page must show once, such as an enrolment code); the page that
follows renders it and clears the cookie. The cookie is signed with the app's secret and bound to
the session, so no other site or session can plant a message, and it is read once: a Refresh shows
the page without it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from aiohttp import web

from server.i18n import Msg
from server.web import SECRET, principal_of, render_page, set_cookie

FLASH_COOKIE = "pg_flash"
#: Long enough for the redirect to be followed, short enough that a forgotten one does not linger.
FLASH_SECONDS = 120
#: Far below a browser's 4 KB per cookie; a longer value (never made here) is not read.
_MAX_COOKIE = 1500


def _signature(request: web.Request, payload: str) -> str:
    principal = principal_of(request)
    session = principal.session_hash if principal else ""
    key = request.app[SECRET].encode()
    return hmac.new(key, f"flash|{session}|{payload}".encode(), hashlib.sha256).hexdigest()[:32]


def _encode(value: dict[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except ValueError:  # bad base64, bytes or JSON alike
        return None
    return value if isinstance(value, dict) else None


def redirect_with_flash(request: web.Request, location: str, message: Msg, **extra: Any) -> web.HTTPSeeOther:
    """A 303 to ``location`` that shows ``message`` (and gives ``extra`` to the next page) once."""
    payload = _encode({"m": message.msgid, "p": message.params, **extra})
    response = web.HTTPSeeOther(location)
    if len(payload) + 33 <= _MAX_COOKIE:
        set_cookie(request, response, FLASH_COOKIE, f"{payload}.{_signature(request, payload)}", max_age=FLASH_SECONDS)
    return response


def take_flash(request: web.Request) -> dict[str, Any] | None:
    """The flash this browser carries, if it is genuine (``message`` is a :class:`Msg`), else None."""
    raw = request.cookies.get(FLASH_COOKIE, "")
    if len(raw) > _MAX_COOKIE or not raw.isascii():
        return None
    payload, _, signature = raw.rpartition(".")
    if not payload or not hmac.compare_digest(signature, _signature(request, payload)):
        return None
    value = _decode(payload)
    if value is None or not isinstance(value.get("m"), str) or not isinstance(value.get("p"), dict):
        return None
    value["message"] = Msg(value.pop("m"), value.pop("p"))
    return value


def render_with_flash(request: web.Request, template: str, context: dict[str, Any], status: int = 200) -> web.Response:
    """Render a page with the flash it was redirected with (as ``flash``), clearing it for good."""
    flash = take_flash(request)
    response = render_page(request, template, {"flash": flash, **context}, status)
    if FLASH_COOKIE in request.cookies:
        response.del_cookie(FLASH_COOKIE, path="/")
    return response
