"""Gate supervisor pages: kiosks (enrol, revoke, health), the live scan log, and conflicts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from gate_core.clock import utc_iso
from gate_core.reasons import DECISION_REASONS, Reason, reason_text
from server.forms import ValidationFailed
from server.gate import kiosks, supervision
from server.gate.kiosks import KIOSKS, EnrolError
from server.gate.live import LIVE
from server.tickets import KEYS
from server.tickets.service import list_itineraries
from server.web import CONFIG, DB, ApiError, lang_of, not_found, parse_id, path_id, render_page, require

routes = web.RouteTableDef()

SUPERVISORS = ("gate_supervisor", "admin")


_page = render_page


_REASON_VALUES = frozenset(r.value for r in DECISION_REASONS)


def _reasons(lang: str) -> list[tuple[str, str]]:
    return [(r.value, reason_text(r, lang)) for r in DECISION_REASONS]


# --- kiosks ------------------------------------------------------------------------------------


def _since(moment: str | None, now: datetime) -> float | None:
    if not moment:
        return None
    try:
        return (now - datetime.fromisoformat(moment)).total_seconds()
    except ValueError:
        return None


async def _kiosks_context(request: web.Request, **extra: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    live = request.app[KIOSKS].live_state()
    synced_to = {kiosk_id: state.synced_to for kiosk_id, state in live.items() if state.synced_to is not None}
    rows = await request.app[DB].read(kiosks.list_kiosks, synced_to)
    connected = request.app[LIVE].connected_kiosks
    for row in rows:
        state = live.get(row["id"])
        if state is not None and state.last_seen:
            seen = utc_iso(datetime.fromtimestamp(state.last_seen, UTC))
            row["last_seen_at"] = max(row["last_seen_at"] or "", seen)
            if state.pending_uploads is not None:
                row["pending_uploads"] = state.pending_uploads
        if state is not None and state.storage_fault is not None:
            row["storage_fault"] = state.storage_fault
        age = _since(row["last_seen_at"], now)
        row["connected"] = row["id"] in connected
        row["online"] = row["status"] == "active" and (
            row["connected"] or (age is not None and age <= kiosks.ONLINE_SECONDS)
        )
    itineraries = await request.app[DB].read(list_itineraries, open_at=now)
    open_conflicts = await request.app[DB].read(supervision.open_conflict_count)
    return {
        "kiosks": rows,
        "itineraries": itineraries,
        "open_conflicts": open_conflicts,
        "values": {},
        "errors": {},
        "chosen": [],
        **extra,
    }


@routes.get("/gate/kiosks", name="gate_kiosks")
async def kiosks_page(request: web.Request) -> web.Response:
    require(request, *SUPERVISORS)
    return _page(request, "gate/kiosks.html", await _kiosks_context(request))


@routes.post("/gate/kiosks")
async def create_kiosk(request: web.Request) -> web.Response:
    principal = require(request, *SUPERVISORS)
    form = await request.post()
    chosen = [str(v) for v in form.getall("itineraries", [])]
    try:
        values = kiosks.validate_kiosk(form, chosen)
        kiosk_id, code = await request.app[DB].write(kiosks.create_kiosk, values, principal.user_id, datetime.now(UTC))
    except ValidationFailed as exc:
        context = await _kiosks_context(request, values=dict(form), errors=exc.errors, chosen=chosen)
        return _page(request, "gate/kiosks.html", context, status=400)
    return _page(
        request,
        "gate/kiosk_code.html",
        {"kiosk_id": kiosk_id, "name": values["name"], "code": code, "hours": kiosks.ENROL_CODE_HOURS},
    )


@routes.post("/gate/kiosks/{id}/enrol-code")
async def renew_enrol_code(request: web.Request) -> web.Response:
    principal = require(request, *SUPERVISORS)
    kiosk_id = path_id(request)
    try:
        name, code = await request.app[DB].write(
            kiosks.renew_enrol_code, kiosk_id, principal.user_id, datetime.now(UTC)
        )
    except EnrolError as exc:
        raise ApiError(409, exc.code, exc.message) from None
    context = {"kiosk_id": kiosk_id, "name": name, "code": code, "hours": kiosks.ENROL_CODE_HOURS}
    return _page(request, "gate/kiosk_code.html", context)


@routes.post("/gate/kiosks/{id}/revoke")
async def revoke_kiosk(request: web.Request) -> web.Response:
    principal = require(request, *SUPERVISORS)
    kiosk_id = path_id(request)
    found = await request.app[DB].write(kiosks.revoke_kiosk, kiosk_id, principal.user_id, datetime.now(UTC))
    if found is None:
        raise not_found()
    # The cache first (the next request is refused), then the open socket.
    request.app[KIOSKS].revoke(kiosk_id)
    await request.app[LIVE].disconnect_kiosk(kiosk_id)
    raise web.HTTPSeeOther("/gate/kiosks")


# --- scan log ----------------------------------------------------------------------------------


@routes.get("/gate/scans", name="gate_scans")
async def scans_page(request: web.Request) -> web.Response:
    require(request, *SUPERVISORS)
    filters, errors = supervision.parse_filters(request.query)
    before = parse_id(request.query.get("before"))
    db = request.app[DB]
    rows = await db.read(
        supervision.scan_log,
        filters,
        request.app[KEYS].verify,
        before,
        supervision.PAGE_SIZE + 1,
        request.app[CONFIG].zone,
    )
    has_more = len(rows) > supervision.PAGE_SIZE
    rows = rows[: supervision.PAGE_SIZE]
    lang = lang_of(request)
    for row in rows:
        row["reason_text"] = reason_text(row["reason"], lang) if row["reason"] in _REASON_VALUES else row["reason"]
        local = row["local_reason"]
        row["local_reason_text"] = reason_text(local, lang) if local in _REASON_VALUES else ""
    next_url = "/gate/scans?" + urlencode({**filters.query(), "before": rows[-1]["id"]}) if has_more and rows else ""
    response = _page(
        request,
        "gate/scans.html",
        {
            "rows": rows,
            "filters": filters,
            "values": {**filters.query()},
            "errors": errors,
            "kiosk_choices": await db.read(supervision.kiosk_choices),
            "reasons": _reasons(lang),
            "next_url": next_url,
            "first_url": "/gate/scans?" + urlencode(filters.query()) if before else "",
            # The unfiltered first page refreshes itself: that is the "live" log, without scripts.
            "auto_refresh": not filters.any and before is None,
        },
    )
    if not filters.any and before is None:
        response.headers["Refresh"] = "10"
    return response


# --- conflicts ---------------------------------------------------------------------------------


async def _conflicts_page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    state = request.query.get("status", "open")
    if state not in supervision.CONFLICT_STATUSES:
        state = "open"
    before = parse_id(request.query.get("before"))
    rows = await request.app[DB].read(supervision.list_conflicts, state, before, supervision.PAGE_SIZE + 1)
    has_more = len(rows) > supervision.PAGE_SIZE
    rows = rows[: supervision.PAGE_SIZE]
    next_url = f"/gate/conflicts?{urlencode({'status': state, 'before': rows[-1]['id']})}" if has_more else ""
    lang = lang_of(request)
    for row in rows:  # what the server said of the scan the kiosk let through anyway
        row["second_reason_text"] = reason_text(Reason(row["second_reason"]), lang) if row["second_reason"] else ""
    context = {"rows": rows, "status": state, "next_url": next_url, "errors": {}, "error_id": None, **extra}
    return _page(request, "gate/conflicts.html", context, status=status)


@routes.get("/gate/conflicts", name="gate_conflicts")
async def conflicts_page(request: web.Request) -> web.Response:
    require(request, *SUPERVISORS)
    return await _conflicts_page(request)


@routes.post("/gate/conflicts/{id}/resolve")
async def resolve_conflict(request: web.Request) -> web.Response:
    principal = require(request, *SUPERVISORS)
    conflict_id = path_id(request)
    form = await request.post()
    try:
        await request.app[DB].write(
            supervision.resolve_conflict, conflict_id, form, principal.user_id, datetime.now(UTC)
        )
    except supervision.ConflictError as exc:
        raise ApiError(404, exc.code, exc.message) from None
    except ValidationFailed as exc:
        return await _conflicts_page(request, status=400, errors=exc.errors, error_id=conflict_id)
    raise web.HTTPSeeOther("/gate/conflicts?status=resolved")
