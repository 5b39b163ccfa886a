"""What one write transaction of online redeems (or of an offline upload) reads once and writes last.

The locking rules are :func:`server.gate.redeem.redeem_batch`'s: the tickets first (their rows,
in id order, on PostgreSQL), the scan ids after, the sync counter just before COMMIT.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple, cast

from gate_core.decision import ItineraryWindow
from gate_core.facts import itinerary_window
from server.sql import Connection, Row
from server.tickets.service import next_seq

Db = Connection
Facts = Row  # a row of FACTS_SQL, its columns by name

FACTS_SQL = (
    "SELECT t.id AS ticket_id, t.itinerary_id, t.company_id, t.printed_at IS NOT NULL AS printed, "
    "t.deleted_at IS NOT NULL AS deleted, c.name AS company_name, g.services, t.used_at, t.used_scan_id, "
    "k.name AS used_kiosk_name, t.code_check "
    "FROM tickets t JOIN companies c ON c.id = t.company_id JOIN generations g ON g.id = t.generation_id "
    "LEFT JOIN kiosks k ON k.id = t.used_kiosk_id WHERE t.id = ?"
)
FACTS_BY_SHORT_CODE_SQL = FACTS_SQL.replace("WHERE t.id = ?", "WHERE t.short_code = ?")


def facts_row_by(db: Db, sql: str, key: int | str) -> Facts | None:
    return cast(Facts | None, db.execute(sql, (key,)).fetchone())


_ITINERARIES_SQL = "SELECT id, vessel, voyage, valid_from, valid_until FROM itineraries WHERE id IN"
SCAN_SQL = "SELECT scan_id, kiosk_id, accepted, reason, code FROM scans WHERE scan_id"


class RecordedScan(NamedTuple):
    """A scan's row as :data:`SCAN_SQL` reads it, for one this batch logged."""

    scan_id: str
    kiosk_id: int
    accepted: int
    reason: str
    code: str


INSERT_SCAN_SQL = (
    "INSERT INTO scans (scan_id, kiosk_id, ticket_id, company_id, code, scanned_at, received_at, mode, accepted, "
    "reason, local_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class TransactionCache:
    """What one write transaction of redeems (or of an offline upload) reads once and writes last.

    Lookups that nothing in the transaction writes (itineraries, service names, kiosk statuses)
    are read once per batch instead of once per scan. :meth:`lock_tickets` reads the facts of
    every ticket the batch names in one statement (on PostgreSQL locking those rows), and
    :meth:`note_use` / :meth:`number_uses` hand the uses their sync numbers at the end.
    """

    def __init__(self, scans_at_end: bool = False) -> None:
        #: Online scans are logged in one statement at the end (:meth:`write_scans`), not one by one.
        self.scans_at_end = scans_at_end
        self._pending_scans: list[tuple] = []
        self.itineraries: dict[int, tuple[str, ItineraryWindow | None]] = {}
        self.services: dict[tuple[str, str], tuple[tuple[int, ...], dict[int, str]]] = {}
        self.kiosk_active: dict[int, bool] = {}
        self.kiosk_tokens: dict[int, str | None] = {}
        self._facts: dict[int, Facts] = {}
        self._scans: dict[str, tuple] = {}
        self._unrecorded: set[str] = set()
        self._used: dict[int, None] = {}  # ticket ids whose use this transaction set, in order

    def lock_tickets(self, db: Db, ticket_ids: Iterable[int], short_codes: Iterable[str] = ()) -> None:
        """Read the named tickets' facts at once; on PostgreSQL lock their rows, in id order, until COMMIT.

        Only transactions that touch one of these tickets wait for each other; taking the locks
        in one statement, ordered by id, means two nodes' batches cannot deadlock on them.
        """
        ids, shorts = sorted(set(ticket_ids)), sorted(set(short_codes))
        where = [f"t.id IN ({','.join('?' * len(ids))})"] if ids else []
        where += [f"t.short_code IN ({','.join('?' * len(shorts))})"] if shorts else []
        if not where:
            return
        lock = f"{db.dialect.for_update} OF t" if db.dialect.for_update else ""
        sql = FACTS_SQL.replace("t.id = ?", " OR ".join(where)) + f" ORDER BY t.id{lock}"
        self._facts = {row["ticket_id"]: row for row in db.execute(sql, (*ids, *shorts)).fetchall()}
        self.read_itineraries(db, {*(row["itinerary_id"] for row in self._facts.values())})

    def read_itineraries(self, db: Db, itinerary_ids: Iterable[int]) -> None:
        """Itineraries' labels and windows into :attr:`itineraries`, those not there yet, in one statement."""
        wanted = sorted(set(itinerary_ids) - set(self.itineraries))
        if not wanted:
            return
        sql = f"{_ITINERARIES_SQL} ({','.join('?' * len(wanted))})"
        for itinerary_id, vessel, voyage, valid_from, valid_until in db.execute(sql, wanted).fetchall():
            start, end = datetime.fromisoformat(valid_from), datetime.fromisoformat(valid_until)
            self.itineraries[itinerary_id] = (f"{vessel} {voyage}", itinerary_window(itinerary_id, start, end))
        for missing in set(wanted) - set(self.itineraries):
            self.itineraries[missing] = ("", None)

    def read_kiosks(self, db: Db, kiosk_ids: Iterable[int]) -> None:
        """Whether these kiosks are active, into :attr:`kiosk_active`, and their token hashes, into
        :attr:`kiosk_tokens`, in one statement (a revocation or an enrolment committed before it refuses
        the batch's redeems, whatever a node's cache says)."""
        wanted = sorted(set(kiosk_ids) - set(self.kiosk_active))
        if not wanted:
            return
        sql = f"SELECT id, status, token_hash FROM kiosks WHERE id IN ({','.join('?' * len(wanted))})"
        rows = {row[0]: row for row in db.execute(sql, wanted).fetchall()}
        for kiosk_id in wanted:
            row = rows.get(kiosk_id)
            self.kiosk_active[kiosk_id] = row is not None and row[1] == "active"
            self.kiosk_tokens[kiosk_id] = row[2] if row is not None else None

    def read_scans(self, db: Db, scan_ids: Iterable[str]) -> None:
        """Read which of these scan ids are recorded, at once; after :meth:`lock_tickets` (see :func:`redeem_batch`)."""
        wanted = sorted(set(scan_ids))
        if not wanted:
            return
        sql = f"{SCAN_SQL} IN ({','.join('?' * len(wanted))})"
        self._scans = {row[0]: row for row in db.execute(sql, wanted).fetchall()}
        self._unrecorded = set(wanted) - set(self._scans)

    def facts_row(self, db: Db, ticket_id: int) -> Facts | None:
        """A ticket's facts row: the one :meth:`lock_tickets` read, once (a second scan of it reads again)."""
        row = self._facts.pop(ticket_id, None)
        return row if row is not None else facts_row_by(db, FACTS_SQL, ticket_id)

    def recorded_scan(self, db: Db, scan_id: str) -> tuple | None:
        """(scan_id, kiosk_id, accepted, reason, code) of a recorded scan, or None."""
        if scan_id in self._unrecorded:
            return None
        found = self._scans.get(scan_id)  # read at the start, or logged by this batch
        if found is not None:
            return found
        return cast(tuple | None, db.execute(f"{SCAN_SQL} = ?", (scan_id,)).fetchone())

    def log_scan(self, db: Db, values: tuple, recorded: RecordedScan) -> None:
        """Log an online scan (:func:`scan_values`), now or at :meth:`write_scans`; this batch finds it from here on."""
        if self.scans_at_end:
            self._pending_scans.append(values)
        else:
            db.execute(INSERT_SCAN_SQL, values)
        self._unrecorded.discard(recorded.scan_id)
        self._scans[recorded.scan_id] = recorded

    def write_scans(self, db: Db) -> None:
        """The scans :meth:`log_scan` kept, in one statement (psycopg sends the rows in one pipeline)."""
        if self._pending_scans:
            db.executemany(INSERT_SCAN_SQL, self._pending_scans)
            self._pending_scans.clear()

    def note_use(self, ticket_id: int) -> None:
        self._used[ticket_id] = None

    def number_uses(self, db: Db) -> None:
        """Give the uses set in this transaction their sync numbers, in one reservation, just before COMMIT.

        The counter's row is locked from here to COMMIT (on PostgreSQL), so numbers become visible
        in the order they were handed out, which a kiosk's sync cursor needs; the rest of the
        transaction never waits for another node's batch on it.
        """
        if not self._used:
            return
        first = next_seq(db, len(self._used))
        db.executemany(
            "UPDATE tickets SET used_seq = ? WHERE id = ?",
            [(first + offset, ticket_id) for offset, ticket_id in enumerate(self._used)],
        )
        self._used.clear()
