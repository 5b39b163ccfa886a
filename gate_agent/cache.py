"""The kiosk's own SQLite: the synced ticket cache, the signing keys, and the durable scan outbox.

Reads for a scan happen inline (an indexed lookup takes microseconds); writes go through
:class:`AgentStore`'s single writer connection. The file runs in WAL mode with
``synchronous=FULL`` so a committed outbox entry survives ``kill -9`` and a power cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from gate_agent.sync.page import BadSyncData, CheckedPage, checked_page, parse_time
from gate_core.codes import ParsedCode, VerifyKey, looks_like_short_code, normalize_short_code, parse_code
from gate_core.decision import GateConfig, ItineraryWindow, PriorUse, TicketFacts
from gate_core.facts import TicketRecord, itinerary_window, ticket_facts
from gate_core.wire import TICKET_COLUMNS

__all__ = ["AgentStore", "BadSyncData", "LocalFacts", "OutboxEntry", "StoreWriter"]
log = logging.getLogger(__name__)
T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS tickets (
    id INTEGER PRIMARY KEY, itinerary_id INTEGER NOT NULL, company_id INTEGER NOT NULL,
    generation_id INTEGER NOT NULL, printed INTEGER NOT NULL, deleted INTEGER NOT NULL,
    short_code TEXT NOT NULL, used_at TEXT, used_by TEXT, used_scan_id TEXT, seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS tickets_short ON tickets(short_code);
CREATE TABLE IF NOT EXISTS companies (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS generations (id INTEGER PRIMARY KEY, services TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS services (id INTEGER PRIMARY KEY, name_es TEXT NOT NULL, name_en TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS itineraries (
    id INTEGER PRIMARY KEY, label TEXT NOT NULL, valid_from TEXT NOT NULL, valid_until TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS kiosks (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS keys (key_id INTEGER PRIMARY KEY, public BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS local_uses (
    ticket_id INTEGER PRIMARY KEY, scan_id TEXT NOT NULL, used_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    scan_id TEXT PRIMARY KEY, code TEXT NOT NULL, scanned_at TEXT NOT NULL, accepted INTEGER NOT NULL,
    reason TEXT NOT NULL, ticket_id INTEGER, created_at REAL NOT NULL, uploaded_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0, rejected TEXT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(uploaded_at, created_at);
"""


# A live push may arrive after a newer sync page: never let an older row win.
_UPSERT_TICKET = (
    f"INSERT INTO tickets ({', '.join(TICKET_COLUMNS)}) VALUES ({', '.join('?' * len(TICKET_COLUMNS))}) "
    "ON CONFLICT(id) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in TICKET_COLUMNS if name != "id")
    + " WHERE excluded.seq >= tickets.seq"
)
_SET_META = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value"
#: What the server sends (and sends again after a restore): the ticket cache, its lookups and the keys.
#: Not the outbox nor the local uses: scans not yet uploaded must still go, and still count here.
_SERVER_DATA = ("tickets", "companies", "generations", "services", "itineraries", "kiosks", "keys")


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=10)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


@dataclass(frozen=True)
class OutboxEntry:
    scan_id: str
    code: str
    scanned_at: str
    accepted: bool
    reason: str


@dataclass(frozen=True)
class LocalFacts:
    """Everything ``decide`` needs about one scanned code, read from the cache."""

    parsed: ParsedCode
    ticket: TicketFacts | None
    prior_use: PriorUse | None
    window: ItineraryWindow | None


class StoreWriter:
    """The one thread that writes the kiosk's SQLite: the fsync of every write happens there, not on the loop."""

    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="agent-db")

    async def __call__(self, write: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, write, *args)

    def shutdown(self) -> None:
        """Let the writes already asked for finish, then end the thread."""
        self._thread.shutdown(wait=True)


class AgentStore:
    """Owner of the agent's SQLite file. Thread-safe: writes are serialised by a lock."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write = _connect(self.path)
        write.executescript(SCHEMA)
        # Columns added since the first caches were made (an upgraded kiosk keeps its cache).
        for table, column in (("outbox", "rejected"), ("tickets", "used_scan_id")):
            if column not in {row[1] for row in write.execute(f"PRAGMA table_info({table})")}:
                write.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")
        # Counted for the screen after every scan: only the few refused rows are in this index.
        write.execute("CREATE INDEX IF NOT EXISTS outbox_rejected ON outbox(scan_id) WHERE rejected IS NOT NULL")
        #: The one writing connection; None after one had to be dropped (reopened by the next write).
        self._write: sqlite3.Connection | None = write
        self._read = _connect(self.path)
        self._lock = threading.Lock()
        self.db = sqlite_utils.Database(self._read)
        self._keys: dict[int, VerifyKey] = self._load_keys()

    def close(self) -> None:
        if self._write is not None:
            self._write.close()
        self._read.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction on the writer connection: committed, or rolled back on any error (so
        the connection is never left inside an open transaction)."""
        with self._lock:
            if self._write is None:
                self._write = _connect(self.path)
            w = self._write
            w.execute("BEGIN IMMEDIATE")
            try:
                yield w
                w.execute("COMMIT")
            except BaseException:
                if w.in_transaction:  # a COMMIT that failed (disk full) may leave it open
                    with contextlib.suppress(sqlite3.Error):
                        w.execute("ROLLBACK")
                if w.in_transaction:  # even the rollback failed: drop it, the next write opens another
                    with contextlib.suppress(sqlite3.Error):
                        w.close()
                    self._write = None
                raise

    # --- meta ---------------------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self._read.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, values: Mapping[str, Any]) -> None:
        with self._transaction() as w:
            w.executemany(_SET_META, [(k, str(v)) for k, v in values.items()])

    def revoke_token(self, token: str) -> str | None:
        """Remember that the server refused ``token``: this kiosk is revoked, unless the box was enrolled again
        meanwhile (``portgate-agent enrol`` while the agent ran), when the newer token is returned untouched."""
        with self._transaction() as w:
            row = w.execute("SELECT value FROM meta WHERE key = 'token'").fetchone()
            if row and row[0] and row[0] != token:
                return row[0]
            w.execute(_SET_META, ("revoked", "1"))
            return None

    @property
    def cursor(self) -> int:
        return int(self.get_meta("cursor", "0") or 0)

    @property
    def sync_epoch(self) -> str | None:
        """The server's sync epoch the cursor counts in (None before the first sync that brought one)."""
        return self.get_meta("sync_epoch")

    def start_over(self, epoch: str) -> None:
        """The server's database was restored (a new ``epoch``): forget what it sent, with the cursor back
        to 0, in ONE transaction, so a kiosk stopped half-way holds either its old cache or none. The
        outbox and the local uses stay: those scans still go to the server and still count here."""
        with self._transaction() as w:
            for table in _SERVER_DATA:
                w.execute(f"DELETE FROM {table}")
            w.executemany(_SET_META, [("cursor", "0"), ("sync_epoch", epoch)])
        self._keys = self._load_keys()

    # --- applying server data -----------------------------------------------------------------
    def apply_changes(self, page: Mapping[str, Any], *, advance_cursor: bool) -> int:
        """Store a sync page or a live push (compact rows + lookups) in one transaction.

        Every value is checked first (:func:`checked_page`): a page with a bad value raises
        :class:`BadSyncData` and stores nothing.
        """
        return self.apply_checked(checked_page(page), advance_cursor=advance_cursor)

    def apply_checked(self, checked: CheckedPage, *, advance_cursor: bool) -> int:
        """Store a page (or a part of one) that :func:`checked_page` has checked, in one transaction."""
        with self._transaction() as w:
            # A live push may arrive after a newer sync page: never let an older row win.
            w.executemany(
                _UPSERT_TICKET,
                checked.tickets,
            )
            w.executemany("INSERT OR REPLACE INTO companies (id, name) VALUES (?, ?)", checked.companies)
            w.executemany("INSERT OR REPLACE INTO generations (id, services) VALUES (?, ?)", checked.generations)
            w.executemany("INSERT OR REPLACE INTO services (id, name_es, name_en) VALUES (?, ?, ?)", checked.services)
            w.executemany(
                "INSERT OR REPLACE INTO itineraries (id, label, valid_from, valid_until, active) "
                "VALUES (?, ?, ?, ?, ?)",
                checked.itineraries,
            )
            w.executemany("INSERT OR REPLACE INTO kiosks (id, name) VALUES (?, ?)", checked.kiosks)
            w.executemany("INSERT OR REPLACE INTO keys (key_id, public) VALUES (?, ?)", checked.keys)
            # Uses the server now knows about no longer need the local marker.
            w.execute(
                "DELETE FROM local_uses WHERE EXISTS (SELECT 1 FROM tickets t WHERE t.id = local_uses.ticket_id "
                "AND t.used_at IS NOT NULL)"
            )
            if advance_cursor and checked.cursor is not None:
                w.execute(
                    "INSERT INTO meta (key, value) VALUES ('cursor', ?) ON CONFLICT(key) DO UPDATE SET "
                    "value = excluded.value WHERE CAST(excluded.value AS INTEGER) > CAST(meta.value AS "
                    "INTEGER)",
                    (str(checked.cursor),),
                )
        if checked.keys:
            self._keys = self._load_keys()
        return len(checked.tickets)

    def apply_push(self, push: Mapping[str, Any]) -> int:
        """Store a live push (checked as a page is; the cursor stays); returns how many of its tickets are new.

        Only the writer calls this, so nothing else adds tickets between the count and the write.
        """
        checked = checked_page(push)
        ids = {row.id for row in checked.tickets}
        known = self._read.execute(
            "SELECT COUNT(*) FROM tickets WHERE id IN (SELECT value FROM json_each(?))", (json.dumps(sorted(ids)),)
        ).fetchone()[0]
        self.apply_checked(checked, advance_cursor=False)
        return len(ids) - known

    def _load_keys(self) -> dict[int, VerifyKey]:
        """The stored public keys; one that cannot be loaded is left out (and said), never fatal."""
        keys = {}
        for key_id, raw in self._read.execute("SELECT key_id, public FROM keys"):
            try:
                keys[key_id] = VerifyKey(key_id, bytes(raw))
            except (TypeError, ValueError) as exc:
                log.error("stored signing key %r is unusable (%s); codes it signed will read as forged", key_id, exc)
        return keys

    @property
    def verify_keys(self) -> Mapping[int, VerifyKey]:
        """The public keys codes are verified with (replaced whole when a sync brings new ones)."""
        return self._keys

    @property
    def ticket_count(self) -> int:
        return self._read.execute("SELECT COUNT(*) FROM tickets").fetchone()[0]

    # --- the scan's facts ---------------------------------------------------------------------
    def lookup_ticket(self, ticket_id: int) -> sqlite3.Row | None:
        return self._ticket_row("id", ticket_id)

    def lookup_short_code(self, short_code: str) -> sqlite3.Row | None:
        return self._ticket_row("short_code", short_code)

    def facts_for(self, text: str, lang: str) -> LocalFacts:
        """Parse a scanned text and read what the cache knows about its ticket."""
        short = normalize_short_code(text) if looks_like_short_code(text) else None
        row = None
        if short:
            row = self.lookup_short_code(short)
            parsed = (
                ParsedCode.from_short(row["id"], row["itinerary_id"], text=short)
                if row
                else ParsedCode.unknown_short(short)
            )
        else:
            parsed = parse_code(text, self._keys)
            if parsed.valid and parsed.ticket_id is not None:
                row = self.lookup_ticket(parsed.ticket_id)
        if row is None:
            window = self._window(parsed.itinerary_id) if parsed.itinerary_id else None
            return LocalFacts(parsed, None, None, window)
        facts, prior = ticket_facts(self._ticket_record(row, lang))
        return LocalFacts(parsed, facts, prior, self._window(row["itinerary_id"]))

    def _ticket_row(self, column: str, value: int | str) -> sqlite3.Row | None:
        cursor = self._read.cursor()
        cursor.row_factory = sqlite3.Row
        return cursor.execute(f"SELECT * FROM tickets WHERE {column} = ?", (value,)).fetchone()

    def _ticket_record(self, row: sqlite3.Row, lang: str) -> TicketRecord:
        """The cached ticket as :func:`gate_core.facts.ticket_facts` takes it (the server builds the same)."""
        one = self._read.execute
        company = one("SELECT name FROM companies WHERE id = ?", (row["company_id"],)).fetchone()
        itinerary = one("SELECT label FROM itineraries WHERE id = ?", (row["itinerary_id"],)).fetchone()
        generation = one("SELECT services FROM generations WHERE id = ?", (row["generation_id"],)).fetchone()
        service_ids = tuple(json.loads(generation[0])) if generation else ()
        column = "name_en" if lang == "en" else "name_es"
        marks = ",".join("?" * len(service_ids))
        names = dict(one(f"SELECT id, {column} FROM services WHERE id IN ({marks})", service_ids).fetchall())
        used_at, kiosk_name, scan_id = row["used_at"], "", row["used_scan_id"] or ""
        if used_at:
            used_by = row["used_by"]
            kiosk = one("SELECT name FROM kiosks WHERE id = ?", (_int_or_none(used_by),)).fetchone()
            kiosk_name = kiosk[0] if kiosk else str(used_by or "")
        else:
            local = one("SELECT scan_id, used_at FROM local_uses WHERE ticket_id = ?", (row["id"],)).fetchone()
            if local:  # used here, not yet known to the server
                scan_id, used_at, kiosk_name = local[0], local[1], self.get_meta("kiosk_name", "") or ""
        return TicketRecord(
            ticket_id=row["id"],
            itinerary_id=row["itinerary_id"],
            printed=bool(row["printed"]),
            deleted=bool(row["deleted"]),
            company_name=company[0] if company else "",
            itinerary_label=itinerary[0] if itinerary else "",
            service_ids=service_ids,
            service_names=names,
            used_at=parse_time(used_at) if used_at else None,
            used_kiosk_name=kiosk_name,
            used_scan_id=scan_id,
        )

    def _window(self, itinerary_id: int) -> ItineraryWindow | None:
        row = self._read.execute(
            "SELECT valid_from, valid_until FROM itineraries WHERE id = ?", (itinerary_id,)
        ).fetchone()
        if row is None:
            return None
        return itinerary_window(itinerary_id, parse_time(row[0]), parse_time(row[1]))

    def gate_config(self) -> GateConfig:
        allowed = self.get_meta("allowed_itineraries")
        ids = json.loads(allowed) if allowed else None
        return GateConfig(
            kiosk_revoked=self.get_meta("revoked") == "1", allowed_itineraries=frozenset(ids) if ids else None
        )

    # --- outbox -------------------------------------------------------------------------------
    def record_scan(self, entry: OutboxEntry, ticket_id: int | None, now: float) -> None:
        """Durably store a scan (and the local use when accepted) before anything else happens."""
        with self._transaction() as w:
            w.execute(
                "INSERT OR IGNORE INTO outbox (scan_id, code, scanned_at, accepted, reason, ticket_id, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.scan_id,
                    entry.code[:512],
                    entry.scanned_at,
                    int(entry.accepted),
                    entry.reason,
                    ticket_id,
                    now,
                ),
            )
            if entry.accepted and ticket_id is not None:
                w.execute(
                    "INSERT OR IGNORE INTO local_uses (ticket_id, scan_id, used_at) VALUES (?, ?, ?)",
                    (ticket_id, entry.scan_id, entry.scanned_at),
                )

    def settle_online(self, scan_id: str, ticket_id: int | None, verdict: Mapping[str, Any], now: float) -> None:
        """The server answered this scan at ``now``: it is uploaded; align the local use with the server's verdict."""
        used_at = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with self._transaction() as w:
            w.execute(
                "UPDATE outbox SET uploaded_at = ?, accepted = ?, reason = ? WHERE scan_id = ?",
                (now, int(bool(verdict.get("accepted"))), str(verdict.get("reason", "")), scan_id),
            )
            if ticket_id is not None:
                if verdict.get("accepted"):
                    w.execute(
                        "INSERT OR IGNORE INTO local_uses (ticket_id, scan_id, used_at) VALUES (?, ?, ?)",
                        (ticket_id, scan_id, used_at),
                    )
                else:
                    w.execute("DELETE FROM local_uses WHERE scan_id = ?", (scan_id,))

    def pending(self, limit: int = 200) -> list[OutboxEntry]:
        rows = self._read.execute(
            "SELECT scan_id, code, scanned_at, accepted, reason FROM outbox "
            "WHERE uploaded_at IS NULL AND rejected IS NULL ORDER BY created_at LIMIT ?",
            (limit,),
        ).fetchall()
        return [OutboxEntry(r[0], r[1], r[2], bool(r[3]), r[4]) for r in rows]

    def pending_count(self) -> int:
        return self._read.execute(
            "SELECT COUNT(*) FROM outbox WHERE uploaded_at IS NULL AND rejected IS NULL"
        ).fetchone()[0]

    def rejected(self) -> list[tuple[str, str]]:
        """(scan id, the server's reason) of the scans the server refused for good."""
        return self._read.execute("SELECT scan_id, rejected FROM outbox WHERE rejected IS NOT NULL").fetchall()

    def rejected_count(self) -> int:
        return self._read.execute("SELECT COUNT(*) FROM outbox WHERE rejected IS NOT NULL").fetchone()[0]

    def retry_rejected(self) -> int:
        """Queue the scans the server refused again (after the server or the agent was fixed)."""
        with self._transaction() as w:
            return w.execute("UPDATE outbox SET rejected = NULL WHERE rejected IS NOT NULL").rowcount

    def mark_rejected(self, refusals: Mapping[str, str]) -> None:
        """Set scans aside that the server refused for good (kept, with its reason, never resent)."""
        with self._transaction() as w:
            w.executemany(
                "UPDATE outbox SET rejected = ? WHERE scan_id = ? AND uploaded_at IS NULL",
                [(why[:500], scan_id) for scan_id, why in refusals.items()],
            )

    def mark_uploaded(self, scan_ids: Iterable[str], now: float) -> None:
        ids = list(scan_ids)
        if not ids:
            return
        with self._transaction() as w:
            w.executemany(
                "UPDATE outbox SET uploaded_at = ? WHERE scan_id = ? AND uploaded_at IS NULL", [(now, i) for i in ids]
            )

    def note_upload_failure(self, scan_ids: Iterable[str]) -> None:
        with self._transaction() as w:
            w.executemany("UPDATE outbox SET attempts = attempts + 1 WHERE scan_id = ?", [(i,) for i in scan_ids])

    def prune_uploaded(self, older_than: float) -> int:
        """Forget scans the server has had since before ``older_than``; returns how many."""
        with self._transaction() as w:
            return w.execute(
                "DELETE FROM outbox WHERE uploaded_at IS NOT NULL AND uploaded_at < ?", (older_than,)
            ).rowcount


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
