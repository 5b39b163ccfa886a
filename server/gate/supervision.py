"""What the gate supervisor watches: the scan log (filtered, keyset-paged) and offline conflicts.

The scan log grows by every scan at every gate, so no query here counts or offsets: pages are
"the 50 newest with id below X" under each filter, each filter backed by an ``(column, id)``
index, and a date range becomes an id range found through the ``received_at`` index.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from gate_core.clock import utc_iso
from gate_core.codes import VerifyKey, normalize_code, normalize_short_code, parse_code
from gate_core.reasons import DECISION_REASONS
from server import forms
from server.accounts.audit import audit
from server.db import one, scalar
from server.forms import FieldErrors
from server.gate.redeem import CONFLICT_KINDS
from server.i18n import Msg
from server.sql import Connection

Db = Connection

PAGE_SIZE = 50
MIN_CODE_PREFIX = 4
CONFLICT_STATUSES = ("open", "resolved", "all")


@dataclass(frozen=True)
class ScanFilters:
    kiosk_id: int | None = None
    accepted: bool | None = None
    reason: str | None = None
    date_from: date | None = None
    date_to: date | None = None  # inclusive
    code: str = ""

    def query(self) -> dict[str, str]:
        """The filters as URL query parameters (for pager links)."""
        values = {
            "kiosk": str(self.kiosk_id or ""),
            "accepted": "" if self.accepted is None else ("1" if self.accepted else "0"),
            "reason": self.reason or "",
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
            "code": self.code,
        }
        return {k: v for k, v in values.items() if v}

    @property
    def any(self) -> bool:
        return bool(self.query())


_VERDICTS: dict[str, bool | None] = {"": None, "1": True, "0": False, "true": True, "false": False}


def parse_filters(query: Mapping[str, str]) -> tuple[ScanFilters, FieldErrors]:
    """Scan-log filters from a query string; a bad value is reported and ignored, never a 500."""
    errors = FieldErrors()
    kiosk_id = forms.integer(query, "kiosk", errors, minimum=1, maximum=2**62, required=False)
    accepted = _VERDICTS.get(query.get("accepted", ""))
    if query.get("accepted", "") not in _VERDICTS:
        errors.add("accepted", Msg("Choose a verdict from the list."))
    reason = query.get("reason", "") or None
    if reason is not None and reason not in {r.value for r in DECISION_REASONS}:
        errors.add("reason", Msg("Choose a reason from the list."))
        reason = None
    code = "".join(forms.clean_text(query.get("code", "")).split())[:200]
    filters = ScanFilters(
        kiosk_id=kiosk_id,
        accepted=accepted,
        reason=reason,
        date_from=forms.optional_day(query, "from", errors),
        date_to=forms.optional_day(query, "to", errors),
        code=code,
    )
    return filters, errors


def _ticket_for_code(db: Db, text: str, verify: Mapping[int, VerifyKey]) -> int | None:
    short = normalize_short_code(text)
    if short is not None:
        return scalar(db, "SELECT id FROM tickets WHERE short_code = ?", (short,))
    if normalize_code(text) is not None:
        parsed = parse_code(text, verify)
        return parsed.ticket_id if parsed.valid else None
    return None


def _midnight(day: date, zone: tzinfo) -> str:
    """The start of ``day`` in ``zone`` as times are stored (``gate_core.clock.utc_iso``), to compare as text."""
    return utc_iso(datetime.combine(day, time(), zone))


def _first_id_at_or_after(db: Db, moment: str) -> int | None:
    return scalar(db, "SELECT id FROM scans WHERE received_at >= ? ORDER BY received_at, id LIMIT 1", (moment,))


def _last_id_before(db: Db, moment: str) -> int | None:
    return scalar(
        db, "SELECT id FROM scans WHERE received_at < ? ORDER BY received_at DESC, id DESC LIMIT 1", (moment,)
    )


_SCAN_COLUMNS = (
    "SELECT s.id, s.scan_id, s.kiosk_id, k.name AS kiosk_name, s.ticket_id, s.company_id, c.name AS company_name, "
    "s.code, s.scanned_at, s.received_at, s.mode, s.accepted, s.reason, s.local_reason "
    "FROM scans s LEFT JOIN kiosks k ON k.id = s.kiosk_id LEFT JOIN companies c ON c.id = s.company_id "
)


def scan_log(
    db: Db,
    filters: ScanFilters,
    verify: Mapping[int, VerifyKey],
    before: int | None = None,
    limit: int = PAGE_SIZE,
    zone: tzinfo = UTC,
) -> list[dict[str, Any]]:
    """The newest scans matching ``filters`` with id below ``before``, newest first.

    The date filters are days of the terminal's calendar (``zone``), from its midnight to the next.
    """
    where: list[str] = []
    params: list[Any] = []
    if filters.kiosk_id:
        where.append("s.kiosk_id = ?")
        params.append(filters.kiosk_id)
    # The literal terms below match the partial indexes' conditions, which lets SQLite use them.
    if filters.accepted is True:
        where.append("s.accepted = 1")
    elif filters.accepted is False:
        where.append("s.accepted = 0")
    if filters.reason:
        where.append("s.reason = ?")
        params.append(filters.reason)
        if filters.reason != "accepted":
            where.append("s.reason != 'accepted'")
    if filters.date_from:
        first = _first_id_at_or_after(db, _midnight(filters.date_from, zone))
        if first is None:
            return []
        where.append("s.id >= ?")
        params.append(first)
    if filters.date_to:
        last = _last_id_before(db, _midnight(filters.date_to + timedelta(days=1), zone))
        if last is None:
            return []
        where.append("s.id <= ?")
        params.append(last)
    if filters.code:
        terms = _code_terms(db, filters.code, verify)
        if terms is None:
            return []
        where.extend(terms[0])
        params.extend(terms[1])
    if before:
        where.append("s.id < ?")
        params.append(before)
    sql = _SCAN_COLUMNS + (f"WHERE {' AND '.join(where)} " if where else "") + "ORDER BY s.id DESC LIMIT ?"
    return list(db.query(sql, [*params, limit]))


def _code_terms(db: Db, code: str, verify: Mapping[int, VerifyKey]) -> tuple[list[str], list[Any]] | None:
    """The conditions (and their parameters) of the scans of ``code``: those of the ticket it names,
    or those logged with a code that starts with it; None when it is too short a prefix to search."""
    ticket_id = _ticket_for_code(db, code, verify)
    if ticket_id is not None:
        return ["s.ticket_id = ?"], [ticket_id]
    # As read_code() stores it: a whole code (either form) as its canonical text, else as typed.
    prefix = normalize_code(code) or code.upper().replace("-", "")
    if len(prefix) < MIN_CODE_PREFIX:
        return None
    # A prefix range on the code index (LIKE would not use it, being case-insensitive);
    # a code that named a ticket was found through the ticket above.
    where, params = ["s.ticket_id IS NULL AND s.code >= ?"], [prefix]
    following = ord(prefix[-1]) + 1
    if 0xD800 <= following <= 0xDFFF:  # surrogates are not characters: the next one is U+E000
        following = 0xE000
    if following <= 0x10FFFF:  # the last code point has no successor: no upper bound
        where.append("s.code < ?")
        params.append(prefix[:-1] + chr(following))
    return where, params


def kiosk_choices(db: Db) -> list[dict[str, Any]]:
    return list(db.query("SELECT id, name FROM kiosks ORDER BY name"))


# --- conflicts ---------------------------------------------------------------------------------


_CONFLICT_COLUMNS = (
    "SELECT c.id, c.ticket_id, c.kind, c.first_scan_id, c.second_scan_id, c.created_at, c.resolved_at, "
    "c.resolution, u.username AS resolved_by_name, t.short_code, co.name AS company_name, "
    "s1.scanned_at AS first_at, k1.name AS first_kiosk, s2.scanned_at AS second_at, k2.name AS second_kiosk, "
    "s2.reason AS second_reason, s2.mode AS second_mode "
    "FROM conflicts c JOIN tickets t ON t.id = c.ticket_id JOIN companies co ON co.id = t.company_id "
    "LEFT JOIN scans s1 ON s1.scan_id = c.first_scan_id AND c.first_scan_id != '' "
    "LEFT JOIN kiosks k1 ON k1.id = s1.kiosk_id "
    "LEFT JOIN scans s2 ON s2.scan_id = c.second_scan_id LEFT JOIN kiosks k2 ON k2.id = s2.kiosk_id "
    "LEFT JOIN users u ON u.id = c.resolved_by "
)
_CONFLICT_STATUS_WHERE = {
    "open": "c.resolved_at IS NULL",
    "resolved": "c.resolved_at IS NOT NULL",
    "all": "1 = 1",
}


def list_conflicts(
    db: Db, status: str = "open", before: int | None = None, limit: int = PAGE_SIZE, kind: str | None = None
) -> list[dict]:
    """Conflicts, newest first, with both scans' kiosk and time and the ticket's company."""
    where = [_CONFLICT_STATUS_WHERE[status], "c.id < ?"]
    params: list[Any] = [before or 2**62]
    if kind:
        where.append("c.kind = ?")
        params.append(kind)
    sql = _CONFLICT_COLUMNS + f"WHERE {' AND '.join(where)} ORDER BY c.id DESC LIMIT ?"
    return list(db.query(sql, (*params, limit)))


def parse_conflict_query(query: Mapping[str, str]) -> tuple[str, str | None, FieldErrors]:
    """Status ("open" unless said) and kind filters of the conflicts list; a bad value is reported."""
    errors = FieldErrors()
    status = query.get("status", "") or "open"
    if status not in CONFLICT_STATUSES:
        errors.add("status", Msg("Choose a conflict status from the list."))
        status = "open"
    kind = query.get("kind", "") or None
    if kind is not None and kind not in CONFLICT_KINDS:
        errors.add("kind", Msg("Choose a conflict kind from the list."))
        kind = None
    return status, kind, errors


def get_conflict(db: Db, conflict_id: int) -> dict[str, Any] | None:
    return one(db, _CONFLICT_COLUMNS + "WHERE c.id = ?", (conflict_id,))


def open_conflict_count(db: Db) -> int:
    return scalar(db, "SELECT COUNT(*) FROM conflicts WHERE resolved_at IS NULL") or 0


class ConflictError(Exception):
    def __init__(self, code: str, message: Msg) -> None:
        super().__init__(code)
        self.code = code
        self.message = message


def resolve_conflict(db: Db, conflict_id: int, data: Mapping[str, Any], actor_id: int | None, now: Any) -> None:
    """Close a conflict with the supervisor's note (what was done about it)."""
    errors = FieldErrors()
    note = forms.text(data, "note", errors, max_len=1000, multiline=True)
    errors.raise_if_any()
    conflict = one(db, "SELECT id, resolved_at FROM conflicts WHERE id = ?", (conflict_id,))
    if conflict is None:
        raise ConflictError("not_found", Msg("Not found."))
    if conflict["resolved_at"]:
        raise ConflictError("already_resolved", Msg("This conflict is already resolved."))
    db.execute(
        "UPDATE conflicts SET resolved_at = ?, resolved_by = ?, resolution = ? WHERE id = ?",
        (utc_iso(now), actor_id, note, conflict_id),
    )
    audit(db, "conflict.resolved", now=now, user_id=actor_id, detail=f"{conflict_id}: {note}"[:500])
