"""The gate supervisor's JSON API: kiosks (enrol, revoke, health), the scan log and conflicts.

The same operations as the supervisor's pages, with the same authorisation (a portal token acting
through a gate supervisor's or an admin's profile) and the same service functions; a filter the
page would ignore with a message is refused here with a 400 that names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from gate_core.clock import utc_iso
from server.forms import ValidationFailed
from server.gate import kiosk_list, kiosks, staff, supervision
from server.gate.kiosks import EnrolError
from server.i18n import Msg
from server.web import DB, int_param, json_body, lang_of, not_found, path_id, require

routes = web.RouteTableDef()
MAX_PAGE = 200
MAX_ITINERARIES = 500


def _iso(timestamp: float | None) -> str | None:
    return utc_iso(datetime.fromtimestamp(timestamp, UTC)) if timestamp else None


def kiosk_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "gate": row["gate"],
        "status": row["status"],
        "allowed_itineraries": row["allowed"],
        "fingerprint": row["fingerprint"],
        "agent_version": row["agent_version"],
        "created_at": row["created_at"],
        "enrolled_at": row["enrolled_at"],
        "revoked_at": row["revoked_at"],
        "enrol_expires_at": _iso(row["enrol_expires_at"]),
        "online": row["online"],
        "connected": row["connected"],
        "last_seen_at": row["last_seen_at"],
        "sync_lag": row["sync_lag"],
        "pending_uploads": row["pending_uploads"],
        "storage_fault": row["storage_fault"],
    }


_SCAN_FIELDS: tuple[str, ...] = (
    *("id", "scan_id", "kiosk_id", "kiosk_name", "ticket_id", "company_id", "company_name", "code"),
    *("scanned_at", "received_at", "mode", "reason", "reason_text", "local_reason", "local_reason_text"),
)
_CONFLICT_FIELDS: tuple[str, ...] = (
    *("id", "ticket_id", "kind", "short_code", "company_name", "created_at", "first_scan_id", "first_kiosk"),
    *("first_at", "second_scan_id", "second_kiosk", "second_at", "second_reason", "second_reason_text"),
    *("resolved_at", "resolution"),
)


def scan_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {**{name: row[name] for name in _SCAN_FIELDS}, "accepted": bool(row["accepted"])}


def conflict_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {**{name: row[name] for name in _CONFLICT_FIELDS}, "resolved_by": row["resolved_by_name"]}


def _limit(request: web.Request) -> int:
    return int_param(request, "limit", kiosk_list.PAGE_SIZE, MAX_PAGE, minimum=1)


# --- kiosks ------------------------------------------------------------------------------------


@routes.get("/api/v1/kiosks")
async def api_kiosks(request: web.Request) -> web.Response:
    require(request, *staff.SUPERVISORS)
    filters, after, errors = kiosk_list.parse_kiosk_query(request.query)
    errors.raise_if_any()
    rows, cursor = await staff.kiosks_page(request.app, filters, after, _limit(request), datetime.now(UTC))
    return web.json_response({"kiosks": [kiosk_json(r) for r in rows], "next": cursor.encode() if cursor else None})


async def _kiosk_json(request: web.Request, kiosk_id: int) -> dict[str, Any]:
    row = await staff.kiosk_with_health(request.app, kiosk_id, datetime.now(UTC))
    if row is None:
        raise not_found()
    return kiosk_json(row)


def _itinerary_ids(body: Mapping[str, Any]) -> list[Any]:
    raw = body.get("itineraries")
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_ITINERARIES:
        message = Msg("Send a list of at most %(n)s itinerary ids.", {"n": MAX_ITINERARIES})
        raise ValidationFailed({"itineraries": message})
    return [item if isinstance(item, int) and not isinstance(item, bool) else "-" for item in raw]


def _enrolment(kiosk: dict[str, Any], code: str, now: datetime) -> dict[str, Any]:
    expires = utc_iso(now + timedelta(hours=kiosks.ENROL_CODE_HOURS))
    return {"kiosk": kiosk, "enrol_code": code, "enrol_expires_at": expires}


@routes.post("/api/v1/kiosks")
async def api_create_kiosk(request: web.Request) -> web.Response:
    principal = require(request, *staff.SUPERVISORS)
    body = await json_body(request)
    values = kiosks.validate_kiosk(body, _itinerary_ids(body))
    now = datetime.now(UTC)
    kiosk_id, code = await request.app[DB].write(kiosks.create_kiosk, values, principal.user_id, now)
    return web.json_response(_enrolment(await _kiosk_json(request, kiosk_id), code, now), status=201)


@routes.get(r"/api/v1/kiosks/{kiosk_id:\d+}")
async def api_kiosk(request: web.Request) -> web.Response:
    require(request, *staff.SUPERVISORS)
    return web.json_response(await _kiosk_json(request, path_id(request, "kiosk_id")))


@routes.post(r"/api/v1/kiosks/{kiosk_id:\d+}/enrol-code")
async def api_renew_enrol_code(request: web.Request) -> web.Response:
    principal = require(request, *staff.SUPERVISORS)
    kiosk_id = path_id(request, "kiosk_id")
    now = datetime.now(UTC)
    try:
        _name, code = await request.app[DB].write(kiosks.renew_enrol_code, kiosk_id, principal.user_id, now)
    except EnrolError as exc:
        raise staff.refusal(exc) from None
    return web.json_response(_enrolment(await _kiosk_json(request, kiosk_id), code, now))


@routes.post(r"/api/v1/kiosks/{kiosk_id:\d+}/revoke")
async def api_revoke_kiosk(request: web.Request) -> web.Response:
    principal = require(request, *staff.SUPERVISORS)
    kiosk_id = path_id(request, "kiosk_id")
    if await staff.revoke_and_cut_off(request.app, kiosk_id, principal.user_id, datetime.now(UTC)) is None:
        raise not_found()
    return web.json_response(await _kiosk_json(request, kiosk_id))


# --- scan log and conflicts --------------------------------------------------------------------


@routes.get("/api/v1/scans")
async def api_scans(request: web.Request) -> web.Response:
    require(request, *staff.SUPERVISORS)
    filters, errors = supervision.parse_filters(request.query)
    errors.raise_if_any()
    before = int_param(request, "before", 0, 2**62) or None
    rows, next_before = await staff.scans_page(request.app, filters, before, _limit(request), lang_of(request))
    return web.json_response({"scans": [scan_json(r) for r in rows], "next_before": next_before})


@routes.get("/api/v1/conflicts")
async def api_conflicts(request: web.Request) -> web.Response:
    require(request, *staff.SUPERVISORS)
    status, kind, errors = supervision.parse_conflict_query(request.query)
    errors.raise_if_any()
    before = int_param(request, "before", 0, 2**62) or None
    rows, next_before = await staff.conflicts_page(request.app, status, kind, before, _limit(request), lang_of(request))
    return web.json_response({"conflicts": [conflict_json(r) for r in rows], "next_before": next_before})


async def _conflict_json(request: web.Request, conflict_id: int) -> dict[str, Any]:
    rows = await staff.conflict_with_text(request.app, conflict_id, lang_of(request))
    if rows is None:
        raise not_found()
    return conflict_json(rows)


@routes.get(r"/api/v1/conflicts/{conflict_id:\d+}")
async def api_conflict(request: web.Request) -> web.Response:
    require(request, *staff.SUPERVISORS)
    return web.json_response(await _conflict_json(request, path_id(request, "conflict_id")))


@routes.post(r"/api/v1/conflicts/{conflict_id:\d+}/resolve")
async def api_resolve_conflict(request: web.Request) -> web.Response:
    principal = require(request, *staff.SUPERVISORS)
    conflict_id = path_id(request, "conflict_id")
    body = await json_body(request)
    try:
        await request.app[DB].write(
            supervision.resolve_conflict, conflict_id, body, principal.user_id, datetime.now(UTC)
        )
    except supervision.ConflictError as exc:
        raise staff.refusal(exc) from None
    return web.json_response(await _conflict_json(request, conflict_id))
