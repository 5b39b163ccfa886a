"""Delta sync for kiosks: tickets changed since a cursor, in a compact row form, plus lookups.

Every change a kiosk must learn about (generate, print, delete, use, itinerary edit, key
rotation) takes a fresh number from ``sync_counter`` and stores it in the row's ``sync_seq`` (a
use: in ``used_seq``, see migration 24), so a kiosk asks for the rows whose numbers are above its
cursor, in order, and resumes anywhere. Writes take turns, so numbers become visible in order and a
cursor never skips an uncommitted change. A ticket is listed once, at the later of its two
numbers: one printed and then used after a cursor comes at its use, with its print.

Cursors count within one history of numbers, named by the database's random epoch (``sync_epoch``,
migration 9200), which every page and the live channel's hello carry. A restore puts an older
counter back and gives the database a new epoch (:func:`renew_epoch`): a kiosk seeing an epoch
other than its own drops its cached tickets and syncs from 0, since its cursor may be ahead of
numbers the restored database hands out again.

A ticket travels as an array (columns in :data:`TICKET_COLUMNS`) instead of an object: keys
would be most of the bytes. Names that many tickets share (companies, itineraries, services)
travel once per page in lookup tables.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterable, Sequence
from typing import Any

from gate_core.wire import TICKET_COLUMNS
from server.db import scalar
from server.sql import POSTGRESQL, SQLITE, Connection

Db = Connection

DEFAULT_PAGE = 50_000
MAX_PAGE = 100_000
_IN_CHUNK = 500

_TICKET_COLUMNS = (
    "t.id, t.itinerary_id, t.company_id, t.generation_id, CASE WHEN t.printed_at IS NULL THEN 0 ELSE 1 END, "
    "CASE WHEN t.deleted_at IS NULL THEN 0 ELSE 1 END, t.short_code, t.used_at, t.used_kiosk_id, t.used_scan_id"
)  # 0/1, not a truth value: PostgreSQL's would be JSON true/false
# Where a row's values are (rows stay plain tuples: a first sync is a million of them).
_ITINERARY, _COMPANY, _GENERATION, _USED_BY, _SEQ = (
    TICKET_COLUMNS.index(name) for name in ("itinerary_id", "company_id", "generation_id", "used_by", "seq")
)
#: A ticket's row with its latest change number.
_TICKET_SELECT = {
    dialect: f"SELECT {_TICKET_COLUMNS}, {dialect.greatest}(t.sync_seq, coalesce(t.used_seq, 0)) FROM tickets t "
    for dialect in (SQLITE, POSTGRESQL)
}


def _changed_query(columns: str) -> str:
    """SQL for ``columns`` of the tickets whose latest change is numbered after a cursor, each once
    with that number, in its order: the two index scans merged in order by SQLite's MERGE (UNION
    ALL), never sorted; each keeps the tickets whose latest number is its own. One statement, so
    one snapshot: a use and a later print committed meanwhile are both seen or both not."""
    return (
        f"SELECT {columns}, t.sync_seq AS seq FROM tickets t "
        "WHERE t.sync_seq > :cursor AND (t.used_seq IS NULL OR t.used_seq < t.sync_seq) "
        f"UNION ALL SELECT {columns}, t.used_seq FROM tickets t "
        "WHERE t.used_seq > :cursor AND t.used_seq > t.sync_seq "
        "ORDER BY seq LIMIT :limit"
    )


_CHANGED_ROWS = _changed_query(_TICKET_COLUMNS)
_CHANGED_IDS = _changed_query("t.id")


def changed_rows(db: Db, cursor: int, limit: int, *, ids_only: bool = False) -> list[tuple]:
    """Tickets changed after ``cursor``, each once, in the order of their latest numbers (each
    row's last item), at most ``limit``. ``ids_only``: (id, number)."""
    sql = _CHANGED_IDS if ids_only else _CHANGED_ROWS
    return db.execute(sql, {"cursor": cursor, "limit": limit}).fetchall()


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), _IN_CHUNK):
        yield ids[start : start + _IN_CHUNK]


def _by_ids(db: Db, sql: str, ids: Iterable[int]) -> list[tuple]:
    """Rows of ``sql`` (which ends in ``IN ({})``) for many ids, a bounded number of ids at a time."""
    wanted = sorted(set(ids))
    rows: list[tuple] = []
    for chunk in _chunks(wanted):
        rows.extend(db.execute(sql.format(",".join("?" * len(chunk))), tuple(chunk)).fetchall())
    return rows


def public_keys(db: Db) -> dict[str, str]:
    """key id → base64 of the raw 32-byte Ed25519 public key, for every key that ever signed."""
    return {
        str(key_id): base64.b64encode(raw).decode("ascii")
        for key_id, raw in db.execute("SELECT key_id, public_key FROM signing_keys ORDER BY key_id")
    }


def _lookups(db: Db, tickets: Sequence[Sequence[Any]], itinerary_ids: Iterable[int] = ()) -> dict[str, Any]:
    """Names the page's tickets refer to: companies, generations → services, itineraries, kiosks."""
    company_ids = {row[_COMPANY] for row in tickets}
    generation_ids = {row[_GENERATION] for row in tickets}
    kiosk_ids = {row[_USED_BY] for row in tickets if row[_USED_BY] is not None}
    generations: dict[str, list[int]] = {}
    service_ids: set[int] = set()
    for gen_id, services in _by_ids(db, "SELECT id, services FROM generations WHERE id IN ({})", generation_ids):
        ids = json.loads(services)
        generations[str(gen_id)] = ids
        service_ids.update(ids)
    wanted_itineraries = {row[_ITINERARY] for row in tickets} | set(itinerary_ids)
    return {
        "companies": {
            str(i): name for i, name in _by_ids(db, "SELECT id, name FROM companies WHERE id IN ({})", company_ids)
        },
        "generations": generations,
        "services": {
            str(i): [es, en]
            for i, es, en in _by_ids(db, "SELECT id, name_es, name_en FROM services WHERE id IN ({})", service_ids)
        },
        "itineraries": {
            str(i): [f"{vessel} {voyage}", valid_from, valid_until, active]
            for i, vessel, voyage, valid_from, valid_until, active in _by_ids(
                db,
                "SELECT id, vessel, voyage, valid_from, valid_until, active FROM itineraries WHERE id IN ({})",
                wanted_itineraries,
            )
        },
        "kiosks": {str(i): name for i, name in _by_ids(db, "SELECT id, name FROM kiosks WHERE id IN ({})", kiosk_ids)},
    }


#: The counter and the epoch in one read (a LEFT JOIN: no epoch row never hides the counter).
_STATE = "SELECT c.value, e.epoch FROM sync_counter c LEFT JOIN sync_epoch e ON e.id = 1 WHERE c.id = 1"


def sync_state(db: Db) -> tuple[int, str]:
    """(the latest sync number, the database's epoch)."""
    row = db.execute(_STATE).fetchone()
    return (row[0] or 0, row[1] or "") if row else (0, "")


def renew_epoch(db: Db) -> str:
    """Give the database a new epoch (after a restore): every kiosk syncs again from 0."""
    epoch = secrets.token_hex(16)
    db.execute("UPDATE sync_epoch SET epoch = ? WHERE id = 1", (epoch,))
    return epoch


def sync_page(db: Db, cursor: int, limit: int) -> dict[str, Any]:
    """Tickets changed after ``cursor`` (at most ``limit``), their lookups, keys, the next cursor and the
    epoch the cursor counts in."""
    db.execute(db.dialect.begin_snapshot)  # one snapshot: the counter and the rows must agree
    try:
        counter, epoch = sync_state(db)
        rows = changed_rows(db, cursor, limit + 1)
        has_more = len(rows) > limit
        tickets = rows[:limit]  # tuples serialise as JSON arrays; no copying of a big page
        next_cursor = tickets[-1][_SEQ] if has_more else max(counter, cursor)
        changed_itineraries = [
            r[0]
            for r in db.execute(
                "SELECT id FROM itineraries WHERE sync_seq > ? AND sync_seq <= ?", (cursor, next_cursor)
            )
        ]
        page = {
            "columns": TICKET_COLUMNS,
            "tickets": tickets,
            **_lookups(db, tickets, changed_itineraries),
            "keys": public_keys(db),
            "cursor": next_cursor,
            "has_more": has_more,
            "epoch": epoch,
        }
    finally:
        db.execute("COMMIT")
    return page


def ticket_changes(db: Db, ticket_ids: Iterable[int]) -> dict[str, Any]:
    """The current compact rows of some tickets and their lookups (what the live channel pushes)."""
    tickets = _by_ids(db, _TICKET_SELECT[db.dialect] + "WHERE t.id IN ({})", ticket_ids)
    tickets.sort(key=lambda row: row[_SEQ])
    return {
        "columns": TICKET_COLUMNS,
        "tickets": tickets,
        **_lookups(db, tickets),
        "seq": tickets[-1][_SEQ] if tickets else 0,
    }


def current_seq(db: Db) -> int:
    return scalar(db, "SELECT value FROM sync_counter WHERE id = 1") or 0
