"""Gate supervisor pages: the live scan log and conflicts (the kiosk pages are in ``kiosk_views``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from gate_core.reasons import DECISION_REASONS, reason_text
from server.flash import redirect_with_flash, render_with_flash
from server.forms import ValidationFailed
from server.gate import staff, supervision
from server.i18n import Msg
from server.web import DB, form_body, lang_of, parse_id, path_id, render_page, require

routes = web.RouteTableDef()


def _reasons(lang: str) -> list[tuple[str, str]]:
    return [(r.value, reason_text(r, lang)) for r in DECISION_REASONS]


# --- scan log ----------------------------------------------------------------------------------


@routes.get("/gate/scans", name="gate_scans")
async def scans_page(request: web.Request) -> web.Response:
    require(request, *staff.SUPERVISORS)
    filters, errors = supervision.parse_filters(request.query)
    before = parse_id(request.query.get("before"))
    lang = lang_of(request)
    rows, next_before = await staff.scans_page(request.app, filters, before, supervision.PAGE_SIZE, lang)
    live = not filters.any and before is None
    response = render_page(
        request,
        "gate/scans.html",
        {
            "rows": rows,
            "filters": filters,
            "values": {**filters.query()},
            "errors": errors,
            "kiosk_choices": await request.app[DB].read(supervision.kiosk_choices),
            "reasons": _reasons(lang),
            "next_url": "/gate/scans?" + urlencode({**filters.query(), "before": next_before}) if next_before else "",
            "first_url": "/gate/scans?" + urlencode(filters.query()) if before else "",
            # The unfiltered first page refreshes itself: that is the "live" log, without scripts.
            "auto_refresh": live,
        },
    )
    if live:
        response.headers["Refresh"] = "10"
    return response


# --- conflicts ---------------------------------------------------------------------------------


async def _conflicts_page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    state, kind, filter_errors = supervision.parse_conflict_query(request.query)
    before = parse_id(request.query.get("before"))
    rows, next_before = await staff.conflicts_page(
        request.app, state, kind, before, supervision.PAGE_SIZE, lang_of(request)
    )
    query = {"status": state, **({"kind": kind} if kind else {})}
    context = {
        "rows": rows,
        "status": state,
        "kind": kind or "",
        "filter_errors": filter_errors,
        "next_url": f"/gate/conflicts?{urlencode({**query, 'before': next_before})}" if next_before else "",
        "first_url": f"/gate/conflicts?{urlencode(query)}" if before else "",
        "errors": {},
        "error_id": None,
        "problem": None,
        **extra,
    }
    return render_with_flash(request, "gate/conflicts.html", context, status=status)


@routes.get("/gate/conflicts", name="gate_conflicts")
async def conflicts_page(request: web.Request) -> web.Response:
    require(request, *staff.SUPERVISORS)
    return await _conflicts_page(request)


@routes.post("/gate/conflicts/{id}/resolve")
async def resolve_conflict(request: web.Request) -> web.Response:
    principal = require(request, *staff.SUPERVISORS)
    conflict_id = path_id(request)
    form = await form_body(request)
    try:
        await request.app[DB].write(
            supervision.resolve_conflict, conflict_id, form, principal.user_id, datetime.now(UTC)
        )
    except supervision.ConflictError as exc:
        if exc.code == "not_found":
            raise staff.refusal(exc) from None
        return await _conflicts_page(request, status=409, problem=exc.message)
    except ValidationFailed as exc:
        return await _conflicts_page(request, status=400, errors=exc.errors, error_id=conflict_id)
    message = Msg("Conflict %(id)s resolved.", {"id": conflict_id})
    raise redirect_with_flash(request, "/gate/conflicts?status=resolved", message)
