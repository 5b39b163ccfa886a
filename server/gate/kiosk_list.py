"""The supervisor's kiosk list: filtered, paged by keyset, never capped.

Kiosks are listed current first (pending and active), then revoked, each group by name. A page
ends with a cursor naming its last row's place in that order, so the next page starts right after
it even when kiosks are added meanwhile (no OFFSET, no row seen twice). A terminal has hundreds
of kiosks, not millions: the name's unique index and a scan of the rest are enough.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from server import forms
from server.db import scalar
from server.forms import FieldErrors
from server.i18n import Msg
from server.sql import Connection

Db = Connection

PAGE_SIZE = 50
KIOSK_STATUSES = ("current", "pending", "active", "revoked")
#: Revoked kiosks list last (an integer: PostgreSQL does not compare a boolean with the cursor's 0/1).
_REVOKED_LAST = "CASE WHEN k.status = 'revoked' THEN 1 ELSE 0 END"
_STATUS_WHERE = {
    "current": "k.status != 'revoked'",
    "pending": "k.status = 'pending'",
    "active": "k.status = 'active'",
    "revoked": "k.status = 'revoked'",
}


@dataclass(frozen=True)
class KioskFilters:
    status: str = ""  # "" for every kiosk, else one of KIOSK_STATUSES
    search: str = ""  # part of the name or the gate

    def query(self) -> dict[str, str]:
        """The filters as URL query parameters (for pager links)."""
        return {k: v for k, v in (("status", self.status), ("q", self.search)) if v}


@dataclass(frozen=True)
class KioskCursor:
    """Where a page of the list ended: (revoked?, name, id) of its last row."""

    revoked: bool
    name: str
    kiosk_id: int

    def encode(self) -> str:
        raw = json.dumps([int(self.revoked), self.name, self.kiosk_id], ensure_ascii=False).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> KioskCursor | None:
        """The cursor ``encode`` made, or None for anything else."""
        try:
            value = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        except ValueError:  # bad base64, bytes or JSON alike
            return None
        if not (isinstance(value, list) and len(value) == 3 and value[0] in (0, 1) and isinstance(value[1], str)):
            return None
        kiosk_id = forms.parse_id(value[2]) if isinstance(value[2], int) else None
        return cls(bool(value[0]), value[1], kiosk_id) if kiosk_id else None


def parse_kiosk_query(query: Mapping[str, str]) -> tuple[KioskFilters, KioskCursor | None, FieldErrors]:
    """Filters and cursor from a query string; a bad value is reported (and left out), never a 500."""
    errors = FieldErrors()
    status = query.get("status", "")
    if status and status not in KIOSK_STATUSES:
        errors.add("status", Msg("Choose a kiosk status from the list."))
        status = ""
    search = forms.text(query, "q", errors, max_len=60, required=False)
    raw_cursor = query.get("after", "")
    cursor = KioskCursor.decode(raw_cursor) if raw_cursor else None
    if raw_cursor and cursor is None:
        errors.add("after", Msg("This page link is not valid; start from the first page."))
    return KioskFilters(status, search if "q" not in errors else ""), cursor, errors


_KIOSK_COLUMNS = (
    "SELECT k.id, k.name, k.gate, k.status, k.fingerprint, k.agent_version, k.created_at, k.enrolled_at, "
    "k.revoked_at, k.last_seen_at, k.last_sync_seq, k.pending_uploads, k.allowed_itineraries, "
    "k.enrol_expires_at, k.storage_fault, k.live_seen_at FROM kiosks k "
)


def list_kiosks(
    db: Db,
    filters: KioskFilters | None = None,
    after: KioskCursor | None = None,
    limit: int = PAGE_SIZE,
    synced_to: Mapping[int, int] | None = None,
) -> list[dict[str, Any]]:
    """A page of kiosks with their sync lag; ``synced_to`` holds cursors newer than the saved ones."""
    where: list[str] = []
    params: list[Any] = []
    filters = filters or KioskFilters()
    if filters.status:
        where.append(_STATUS_WHERE[filters.status])
    if filters.search:
        from server.tickets.paging import contains  # the tickets package imports the gate's as it loads

        where.append("(lower(k.name) LIKE ? ESCAPE '\\' OR lower(k.gate) LIKE ? ESCAPE '\\')")
        params += [contains(filters.search.lower())] * 2
    if after is not None:
        where.append(f"({_REVOKED_LAST}, k.name, k.id) > (?, ?, ?)")
        params += [int(after.revoked), after.name, after.kiosk_id]
    sql = _KIOSK_COLUMNS + (f"WHERE {' AND '.join(where)} " if where else "")
    rows = list(db.query(sql + f"ORDER BY {_REVOKED_LAST}, k.name, k.id LIMIT ?", [*params, limit]))
    return _with_sync_lag(db, rows, synced_to or {})


def get_kiosk(db: Db, kiosk_id: int, synced_to: Mapping[int, int] | None = None) -> dict[str, Any] | None:
    rows = list(db.query(_KIOSK_COLUMNS + "WHERE k.id = ?", (kiosk_id,)))
    return _with_sync_lag(db, rows, synced_to or {})[0] if rows else None


def _with_sync_lag(db: Db, rows: list[dict[str, Any]], synced_to: Mapping[int, int]) -> list[dict[str, Any]]:
    counter = scalar(db, "SELECT value FROM sync_counter WHERE id = 1") or 0
    for row in rows:
        row["last_sync_seq"] = max(row["last_sync_seq"], synced_to.get(row["id"], 0))
        row["sync_lag"] = max(0, counter - row["last_sync_seq"]) if row["enrolled_at"] else None
        row["allowed"] = json.loads(row["allowed_itineraries"]) if row["allowed_itineraries"] else []
    return rows


def cursor_after(row: Mapping[str, Any]) -> KioskCursor:
    """The cursor of the page that ends at ``row``."""
    return KioskCursor(row["status"] == "revoked", row["name"], row["id"])
