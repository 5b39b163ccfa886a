"""Uploads of scans a kiosk decided offline: each logged once, its use recorded, conflicts found.

A kiosk that lost the server decides from its cache and lets trucks through; when it is back it
uploads what it did. The truck has passed, so the server cannot refuse: it records the use (the
earlier scan of two is the first), keeps its own verdict at the kiosk's scan time beside the
kiosk's, and turns every accept its record disagrees with into a conflict the supervisor resolves.
Runs in one write transaction per chunk, on the database's single writer thread (see ``redeem``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gate_core.clock import utc_iso
from gate_core.codes import ParsedCode
from gate_core.decision import GateConfig, PriorUse, TicketFacts, decide
from gate_core.reasons import Reason
from server.gate.redeem import (
    ACCEPTED_AFTER_DELETE,
    DOUBLE_ACCEPT,
    OVERRODE_REFUSAL,
    Db,
    ScanInput,
    TransactionCache,
    insert_scan,
    look_up,
    resolve_code,
    scan_values,
)


@dataclass(frozen=True)
class OfflineScan:
    """A scan as a kiosk reports it: what it read, and whether it let the truck through and why."""

    scan: ScanInput
    accepted: bool
    reason: Reason


def _record_offline(
    db: Db, kiosk_id: int, item: OfflineScan, allowed: frozenset[int] | None, received: str, cache: TransactionCache
) -> tuple[dict[str, Any], int | None]:
    """Log one offline scan; record its use or a conflict.

    Returns its result (as :func:`_offline_result` reads it back for a re-upload) and the id of the
    ticket whose use changed, if any.
    """
    scan = item.scan
    code, read = resolve_code(db, scan.code, scan.parsed)
    lookup = look_up(db, code, cache=cache, read=read)
    offline_row = functools.partial(scan_values, scan, kiosk_id, lookup, code.ticket_id, received, "offline")
    if not item.accepted:
        insert_scan(db, offline_row(False, item.reason, item.reason))
        return _result(scan.scan_id, "logged", item.reason), None
    # The truck has passed: what would the server have said at that moment?
    verdict = decide(
        code, lookup.ticket, lookup.prior_use, lookup.window, scan.scanned_at, GateConfig(allowed_itineraries=allowed)
    )
    insert_scan(db, offline_row(True, verdict.reason, item.reason))
    ticket = lookup.ticket
    if ticket is None:
        # Forged or unknown: the log row is the record; there is no ticket to use.
        return _result(scan.scan_id, "logged", verdict.reason), None
    kind, changed = _local_accept(
        db, ticket, lookup.prior_use, verdict.accepted, (scan.scan_id, kiosk_id, received), cache
    )
    if kind is None:
        return _result(scan.scan_id, "use_recorded", verdict.reason), changed
    return _result(scan.scan_id, "conflict", verdict.reason, kind), changed


def _local_accept(
    db: Db,
    ticket: TicketFacts,
    prior: PriorUse | None,
    server_agrees: bool,
    reported: tuple[str, int, str],
    cache: TransactionCache,
    overrode: bool = False,
) -> tuple[str | None, int | None]:
    """Record that a kiosk let ``ticket`` through with scan ``scan_id`` (already in the log).

    ``reported`` is (scan id, kiosk id, received at) of that scan.
    ``server_agrees`` is whether the server's rules accept the scan at its time; ``overrode`` says
    the server had refused this very scan online, which names every conflict it makes. Returns
    the conflict kind recorded (None when there is none) and the ticket id whose use changed (for
    the live push). An unused ticket becomes used by this scan whatever else is wrong with it, so
    that it cannot let a second truck in; of two uses the earlier scan is the first (the scans'
    own times, upload order breaking a tie), whichever kiosk uploaded first.
    """
    scan_id, kiosk_id, received = reported
    ticket_id = ticket.ticket_id
    first, second, changed = (prior.scan_id if prior else ""), scan_id, None
    if ticket.deleted:
        kind: str | None = ACCEPTED_AFTER_DELETE
    elif prior is None:
        _move_use(db, ticket_id, scan_id, kiosk_id, cache)
        kind, changed = (None if server_agrees else OVERRODE_REFUSAL), ticket_id
    else:
        kind = DOUBLE_ACCEPT
        if _scanned_before(db, scan_id, prior.scan_id):
            _move_use(db, ticket_id, scan_id, kiosk_id, cache)
            first, second, changed = scan_id, prior.scan_id, ticket_id
    if kind is not None:
        kind = OVERRODE_REFUSAL if overrode else kind
        _insert_conflict(db, ticket_id, kind, first, second, received, reported_by=scan_id)
    return kind, changed


def _scanned_before(db: Db, scan_id: str, other_scan_id: str) -> bool:
    """Whether scan ``scan_id`` happened before ``other_scan_id`` by the scans' own (kiosk) times.

    Upload order (the log's id) breaks a tie; a use whose scan is not in the log came first.
    """
    first, second = (
        db.execute("SELECT scanned_at, id FROM scans WHERE scan_id = ?", (s,)).fetchone()
        for s in (scan_id, other_scan_id)
    )
    if first is None or second is None:
        return False
    return (datetime.fromisoformat(first[0]), first[1]) < (datetime.fromisoformat(second[0]), second[1])


def _move_use(db: Db, ticket_id: int, scan_id: str, kiosk_id: int, cache: TransactionCache) -> None:
    """Make scan ``scan_id`` the ticket's use (at its scan time), whether or not another scan held it.

    Its sync number comes at the end of the transaction (:meth:`TransactionCache.number_uses`).
    """
    scanned_at = db.execute("SELECT scanned_at FROM scans WHERE scan_id = ?", (scan_id,)).fetchone()[0]
    db.execute(
        "UPDATE tickets SET used_at = ?, used_scan_id = ?, used_kiosk_id = ? WHERE id = ?",
        (scanned_at, scan_id, kiosk_id, ticket_id),
    )
    cache.note_use(ticket_id)


def _result(scan_id: str, outcome: str, reason: Reason | str, conflict: str | None = None) -> dict[str, Any]:
    return {"scan_id": scan_id, "outcome": outcome, "reason": Reason(reason).value, "conflict": conflict}


def _insert_conflict(
    db: Db, ticket_id: int, kind: str, first: str, second: str, created: str, reported_by: str | None = None
) -> None:
    """Record a conflict; ``reported_by`` is the scan whose upload found it (the second, unless reordered)."""
    db.execute(
        "INSERT INTO conflicts (ticket_id, kind, first_scan_id, second_scan_id, created_at, reported_scan_id) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (ticket_id, kind, first, second, created, reported_by or second),
    )


def _offline_result(db: Db, scan_id: str) -> dict[str, Any]:
    """The server's outcome for a recorded scan, derived from what is stored (so re-uploads agree)."""
    accepted, reason, ticket_id = db.execute(
        "SELECT accepted, reason, ticket_id FROM scans WHERE scan_id = ?", (scan_id,)
    ).fetchone()
    conflict = db.execute(
        "SELECT id, kind FROM conflicts WHERE reported_scan_id = ? ORDER BY id LIMIT 1", (scan_id,)
    ).fetchone()
    if conflict is not None:
        return _result(scan_id, "conflict", reason, conflict[1])
    # An accept that was the ticket's use when it was reported stays "use_recorded", even once an
    # earlier scan reported later has taken the first place in a conflict.
    used = db.execute(
        "SELECT 1 FROM tickets WHERE id = ? AND used_scan_id = ? UNION ALL "
        "SELECT 1 FROM conflicts WHERE first_scan_id = ? OR second_scan_id = ?",
        (ticket_id, scan_id, scan_id, scan_id),
    ).fetchone()
    return _result(scan_id, "use_recorded" if accepted and used else "logged", reason)


def _report_of_a_known_scan(
    db: Db, kiosk_id: int, item: OfflineScan, received: str, cache: TransactionCache
) -> tuple[dict[str, Any], int | None]:
    """A scan the server has recorded already (an online redeem, or an earlier upload), reported again.

    The same answer as before, except when the kiosk says it let the truck through and the server's
    record says it did not (its online refusal never reached the kiosk in time): the log then shows
    what the kiosk did, and the entry is a conflict the supervisor sees.
    """
    scan_id = item.scan.scan_id
    recorded = db.execute("SELECT accepted, ticket_id FROM scans WHERE scan_id = ?", (scan_id,)).fetchone()
    if not item.accepted or recorded[0]:
        return _offline_result(db, scan_id), None
    db.execute("UPDATE scans SET accepted = 1, local_reason = ? WHERE scan_id = ?", (item.reason.value, scan_id))
    ticket_id = recorded[1]
    if ticket_id is None:
        return _offline_result(db, scan_id), None
    itinerary_id = db.execute("SELECT itinerary_id FROM tickets WHERE id = ?", (ticket_id,)).fetchone()[0]
    lookup = look_up(db, ParsedCode.from_short(ticket_id, itinerary_id), cache=cache)
    assert lookup.ticket is not None  # the log's ticket id names a ticket (tickets are never removed)
    _kind, changed = _local_accept(
        db, lookup.ticket, lookup.prior_use, False, (scan_id, kiosk_id, received), cache, overrode=True
    )
    return _offline_result(db, scan_id), changed


def record_offline_scans(
    db: Db, kiosk_id: int, items: list[OfflineScan], allowed: frozenset[int] | None, now: datetime
) -> tuple[list[dict[str, Any]], list[int]]:
    """Record a batch of offline scans, each exactly once; returns per-scan results and used ticket ids.

    The same locking as the online redeems (:func:`server.gate.redeem.redeem_batch`): the
    tickets the scans name are locked first, in id order, each scan id is looked up after, and
    the uses get their sync numbers just before COMMIT.
    """
    received = utc_iso(now)
    results: list[dict[str, Any]] = []
    used: list[int] = []
    cache = TransactionCache()
    cache.lock_tickets(
        db,
        (item.scan.parsed.ticket_id for item in items if item.scan.parsed and item.scan.parsed.ticket_id),
        (item.scan.code for item in items if item.scan.parsed is None),
    )
    for item in items:
        owner = db.execute("SELECT kiosk_id FROM scans WHERE scan_id = ?", (item.scan.scan_id,)).fetchone()
        if owner is not None and owner[0] != kiosk_id:
            results.append(
                {
                    "scan_id": item.scan.scan_id,
                    "outcome": "rejected",
                    "reason": None,
                    "conflict": None,
                    "error": "scan_id_taken",
                }
            )
            continue
        if owner is None:
            result, ticket_id = _record_offline(db, kiosk_id, item, allowed, received, cache)
        else:  # recorded before: the same answer, read from what was stored (unless the kiosk overrode it)
            result, ticket_id = _report_of_a_known_scan(db, kiosk_id, item, received, cache)
        if ticket_id is not None:
            used.append(ticket_id)
        results.append(result)
    cache.number_uses(db)
    return results, used
