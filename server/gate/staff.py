"""What the supervisor's pages and the staff API share: kiosks with their health, and cutting one off.

A kiosk's health mixes the database (saved last-seen, sync cursor, outbox size) with this worker's
memory (fresher last-seen and cursor from the token cache, the open live sockets), so both the page
and the API see the same figures.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from gate_core.clock import utc_iso
from gate_core.reasons import DECISION_REASONS, Reason, reason_text
from server.gate import kiosk_list, kiosks, supervision
from server.gate.kiosk_list import KioskCursor, KioskFilters
from server.gate.kiosks import KIOSKS, LIVENESS_FLUSH_SECONDS
from server.gate.live import LIVE
from server.tickets import KEYS
from server.web import CONFIG, DB, ApiError

SUPERVISORS = ("gate_supervisor", "admin")

#: A kiosk heard from within this long (or holding its live socket) shows as online.
ONLINE_SECONDS = 60
#: A live channel another node saw open this recently (three of its liveness flushes) counts as connected.
LIVE_ELSEWHERE_SECONDS = 3 * LIVENESS_FLUSH_SECONDS


def refusal(exc: kiosks.EnrolError | supervision.ConflictError) -> ApiError:
    """A refused supervisor action as the API and the pages answer it: 404 when there is no such thing, else 409."""
    return ApiError(404 if exc.code == "not_found" else 409, exc.code, exc.message)


def _since(moment: str | None, now: datetime) -> float | None:
    if not moment:
        return None
    try:
        return (now - datetime.fromisoformat(moment)).total_seconds()
    except ValueError:
        return None


def _add_health(app: web.Application, rows: list[dict[str, Any]], now: datetime) -> None:
    """Online, connected, last seen and outbox figures, the freshest this worker knows."""
    live = app[KIOSKS].live_state()
    connected = app[LIVE].connected_kiosks
    for row in rows:
        state = live.get(row["id"])
        if state is not None and state.last_seen:
            seen = utc_iso(datetime.fromtimestamp(state.last_seen, UTC))
            row["last_seen_at"] = max(row["last_seen_at"] or "", seen)
            if state.pending_uploads is not None:
                row["pending_uploads"] = state.pending_uploads
        if state is not None and state.storage_fault is not None:
            row["storage_fault"] = state.storage_fault
        row["storage_fault"] = bool(row["storage_fault"])
        age = _since(row["last_seen_at"], now)
        # Its live channel here, or on another node that said so lately (its liveness flush, every 5 s).
        live_age = _since(row.pop("live_seen_at", None), now)
        row["connected"] = row["id"] in connected or (live_age is not None and live_age <= LIVE_ELSEWHERE_SECONDS)
        row["online"] = row["status"] == "active" and (row["connected"] or (age is not None and age <= ONLINE_SECONDS))


def _synced_to(app: web.Application) -> dict[int, int]:
    live = app[KIOSKS].live_state()
    return {kiosk_id: state.synced_to for kiosk_id, state in live.items() if state.synced_to is not None}


async def kiosks_page(
    app: web.Application, filters: KioskFilters, after: KioskCursor | None, limit: int, now: datetime
) -> tuple[list[dict[str, Any]], KioskCursor | None]:
    """A page of kiosks with their health, and the cursor of the next page (None on the last)."""
    rows = await app[DB].read(kiosk_list.list_kiosks, filters, after, limit + 1, _synced_to(app))
    more = len(rows) > limit
    rows = rows[:limit]
    _add_health(app, rows, now)
    return rows, kiosk_list.cursor_after(rows[-1]) if more and rows else None


async def kiosk_with_health(app: web.Application, kiosk_id: int, now: datetime) -> dict[str, Any] | None:
    row = await app[DB].read(kiosk_list.get_kiosk, kiosk_id, _synced_to(app))
    if row is not None:
        _add_health(app, [row], now)
    return row


async def revoke_and_cut_off(app: web.Application, kiosk_id: int, actor_id: int, now: datetime) -> str | None:
    """Revoke a kiosk and cut it off at once: its next request is refused by every worker, its live
    socket closes. Returns its name, or None when there is no such kiosk."""
    found = await app[DB].write(kiosks.revoke_kiosk, kiosk_id, actor_id, now)
    if found is None:
        return None
    # The cache first (the next request is refused), then the open socket.
    app[KIOSKS].revoke(kiosk_id)
    await app[LIVE].disconnect_kiosk(kiosk_id)
    return str(found["name"])


# --- scans and conflicts -----------------------------------------------------------------------

_REASON_VALUES = frozenset(r.value for r in DECISION_REASONS)


def _reason_text(reason: str | None, lang: str) -> str:
    return reason_text(Reason(reason), lang) if reason in _REASON_VALUES else ""


async def scans_page(
    app: web.Application, filters: supervision.ScanFilters, before: int | None, limit: int, lang: str
) -> tuple[list[dict[str, Any]], int | None]:
    """A page of the scan log (newest first) with each reason in words, and the id the next page starts below."""
    rows = await app[DB].read(supervision.scan_log, filters, app[KEYS].verify, before, limit + 1, app[CONFIG].zone)
    more = len(rows) > limit
    rows = rows[:limit]
    for row in rows:
        row["reason_text"] = _reason_text(row["reason"], lang) or row["reason"]
        row["local_reason_text"] = _reason_text(row["local_reason"], lang)
    return rows, rows[-1]["id"] if more and rows else None


async def conflicts_page(
    app: web.Application, status: str, kind: str | None, before: int | None, limit: int, lang: str
) -> tuple[list[dict[str, Any]], int | None]:
    """A page of conflicts (newest first), and the id the next page starts below."""
    rows = await app[DB].read(supervision.list_conflicts, status, before, limit + 1, kind)
    more = len(rows) > limit
    rows = rows[:limit]
    for row in rows:  # what the server said of the scan the kiosk let through anyway
        row["second_reason_text"] = _reason_text(row["second_reason"], lang)
    return rows, rows[-1]["id"] if more and rows else None


async def conflict_with_text(app: web.Application, conflict_id: int, lang: str) -> dict[str, Any] | None:
    row = await app[DB].read(supervision.get_conflict, conflict_id)
    if row is not None:
        row["second_reason_text"] = _reason_text(row["second_reason"], lang)
    return row
