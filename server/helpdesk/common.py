"""What the helpdesk's pages and API handlers share: roles, scopes, error mapping, page helpers."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from aiohttp import web

from server import timefmt
from server.flash import render_with_flash
from server.helpdesk.licences import LicenceError
from server.helpdesk.settings import AREA_LABELS, HELPDESK_SETTINGS
from server.helpdesk.tickets import STATUS_TEXT
from server.i18n import translate
from server.web import CONFIG, PORTAL_CUSTOMER_ROLES, ApiError, Principal, lang_of, terminal_now

CUSTOMER = PORTAL_CUSTOMER_ROLES  # prospects too: helpdesk, licences and policies, not gate tickets
STAFF = ("helpdesk_agent", "admin")
TICKET_ROLES = CUSTOMER + STAFF
#: Who sees licence serials and machines: customers their own, the gate supervisor the operator's
#: (its kiosks are machines on them), the administrator every company's.
LICENCE_ROLES = CUSTOMER + ("gate_supervisor", "admin")


def licence_scope(principal: Principal) -> int | None:
    """The company whose serials the principal sees; ``None`` (all) for the administrator."""
    return None if principal.role == "admin" else principal.company_id


def ticket_scope(principal: Principal) -> int | None:
    """The company whose tickets the principal sees; ``None`` (all) for helpdesk staff."""
    return None if principal.role in STAFF else principal.company_id


def now() -> datetime:
    return datetime.now(UTC)


def today(request: web.Request) -> date:
    """The terminal's calendar day (``Config.timezone``): what "valid until" and "days left" count in."""
    return terminal_now(request.app).date()


def licence_error(exc: LicenceError) -> ApiError:
    return ApiError(404 if exc.code == "not_found" else 409, exc.code, exc.message)


def area_name(lang: str, area: str) -> str:
    return translate(lang, AREA_LABELS[area]) if area in AREA_LABELS else area


def status_name(lang: str, status: str) -> str:
    texts = STATUS_TEXT.get(status)
    return texts.get(lang, texts["es"]) if texts else status


def hd_page(
    request: web.Request, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> web.Response:
    """A page with the date, area and status helpers the helpdesk templates use, and the result of the
    form post that redirected here (``flash``), shown once."""
    lang = lang_of(request)
    moment = now()
    zone = request.app[CONFIG].zone
    helpers = {
        "when": lambda value: timefmt.when(value, moment, lang, zone),
        "day": lambda value: timefmt.day(value, lang, zone),
        "area_name": lambda area: area_name(lang, area),
        "status_name": lambda value: status_name(lang, value),
        "areas": request.app[HELPDESK_SETTINGS].areas,
        "values": {},
        "errors": {},
    }
    return render_with_flash(request, template, {**helpers, **(context or {})}, status)
