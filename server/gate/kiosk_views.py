"""The gate supervisor's kiosk pages: the list with health (filtered, paged), enrolment codes, revoking.

Every form post answers a redirect to a page that shows its result once (``flash``), so Back and
Refresh never send it again; the one-time enrolment code travels the same way and is shown once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from server.flash import redirect_with_flash, render_with_flash
from server.forms import ValidationFailed, parse_id
from server.gate import kiosk_list, kiosks, staff, supervision
from server.gate.kiosks import EnrolError
from server.i18n import Msg
from server.tickets import customer_lists
from server.web import DB, form_body, not_found, path_id, require

routes = web.RouteTableDef()


async def _kiosks_context(request: web.Request, **extra: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    filters, after, errors = kiosk_list.parse_kiosk_query(request.query)
    rows, next_cursor = await staff.kiosks_page(request.app, filters, after, kiosk_list.PAGE_SIZE, now)
    query = filters.query()
    return {
        "kiosks": rows,
        "filters": query,
        "filter_errors": errors,
        "statuses": kiosk_list.KIOSK_STATUSES,
        "next_url": "/gate/kiosks?" + urlencode({**query, "after": next_cursor.encode()}) if next_cursor else "",
        "first_url": "/gate/kiosks?" + urlencode(query) if after else "",
        "itineraries": await _itinerary_choices(request, now, extra.get("chosen", [])),
        "itinerary_q": _itinerary_search(request.query),
        "open_conflicts": await request.app[DB].read(supervision.open_conflict_count),
        "values": {},
        "errors": {},
        "chosen": [],
        **extra,
    }


def _itinerary_search(query: Mapping[str, str]) -> str:
    return " ".join(query.get("itinerary_q", "").split())[:60]


async def _itinerary_choices(request: web.Request, now: datetime, chosen: list[str]) -> list[dict[str, Any]]:
    """The open itineraries matching ``?itinerary_q`` (vessel or voyage prefix), those already ticked first."""
    db = request.app[DB]
    ticked = [i for i in (parse_id(c) for c in chosen) if i]
    kept = await db.read(customer_lists.open_itineraries_by_id, ticked, now)
    found = await db.read(customer_lists.open_itineraries, now, _itinerary_search(request.query))
    return kept + [i for i in found if i["id"] not in ticked]


@routes.get("/gate/kiosks", name="gate_kiosks")
async def kiosks_page(request: web.Request) -> web.Response:
    require(request, *staff.SUPERVISORS)
    return render_with_flash(request, "gate/kiosks.html", await _kiosks_context(request))


@routes.post("/gate/kiosks")
async def create_kiosk(request: web.Request) -> web.Response:
    principal = require(request, *staff.SUPERVISORS)
    form = await form_body(request)
    chosen = [str(v) for v in form.getall("itineraries", [])]
    try:
        values = kiosks.validate_kiosk(form, chosen)
        kiosk_id, code = await request.app[DB].write(kiosks.create_kiosk, values, principal.user_id, datetime.now(UTC))
    except ValidationFailed as exc:
        context = await _kiosks_context(request, values=dict(form), errors=exc.errors, chosen=chosen)
        return render_with_flash(request, "gate/kiosks.html", context, status=400)
    message = Msg("Kiosk %(name)s created. Type its enrolment code on the kiosk.", {"name": values["name"]})
    raise redirect_with_flash(request, f"/gate/kiosks/{kiosk_id}/enrol-code", message, kiosk=kiosk_id, code=code)


async def _kiosk(request: web.Request) -> dict[str, Any]:
    kiosk = await staff.kiosk_with_health(request.app, path_id(request), datetime.now(UTC))
    if kiosk is None:
        raise not_found()
    return kiosk


@routes.get("/gate/kiosks/{id}/enrol-code")
async def enrol_code_page(request: web.Request) -> web.Response:
    """The code just made, shown once; after that, the way to make a new one."""
    require(request, *staff.SUPERVISORS)
    kiosk = await _kiosk(request)
    return render_with_flash(request, "gate/kiosk_code.html", {"kiosk": kiosk, "hours": kiosks.ENROL_CODE_HOURS})


@routes.post("/gate/kiosks/{id}/enrol-code")
async def renew_enrol_code(request: web.Request) -> web.Response:
    principal = require(request, *staff.SUPERVISORS)
    kiosk_id = path_id(request)
    try:
        name, code = await request.app[DB].write(
            kiosks.renew_enrol_code, kiosk_id, principal.user_id, datetime.now(UTC)
        )
    except EnrolError as exc:
        raise staff.refusal(exc) from None
    message = Msg("A new enrolment code for %(name)s; the previous one no longer works.", {"name": name})
    raise redirect_with_flash(request, f"/gate/kiosks/{kiosk_id}/enrol-code", message, kiosk=kiosk_id, code=code)


@routes.get("/gate/kiosks/{id}/revoke")
async def confirm_revoke_page(request: web.Request) -> web.Response:
    """What revoking will do, with the button that does it: nothing is revoked on one click."""
    require(request, *staff.SUPERVISORS)
    return render_with_flash(request, "gate/kiosk_revoke.html", {"kiosk": await _kiosk(request)})


@routes.post("/gate/kiosks/{id}/revoke")
async def revoke_kiosk(request: web.Request) -> web.Response:
    principal = require(request, *staff.SUPERVISORS)
    name = await staff.revoke_and_cut_off(request.app, path_id(request), principal.user_id, datetime.now(UTC))
    if name is None:
        raise not_found()
    message = Msg(
        "Kiosk %(name)s revoked: it can no longer check tickets or report scans, and its place on the "
        "gate licence is free.",
        {"name": name},
    )
    raise redirect_with_flash(request, "/gate/kiosks", message)
