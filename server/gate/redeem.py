"""Redeeming scans: online (atomic single use) and uploads of scans a kiosk decided offline.

Both run inside one write transaction on the database's single writer thread, so "is it used?"
and "mark it used" can never interleave with another redeem or with a deletion. The rules are
not here: :func:`gate_core.decision.decide` is the one copy, shared with the kiosks; this module
only looks up the facts it needs and records the outcome.

Scan rows keep what happened at the gate (``accepted``) apart from why the server agrees
(``reason``): for an online scan both come from the server's verdict; for an offline scan
``accepted`` and ``local_reason`` are the kiosk's, and ``reason`` is the server's own view at the
kiosk's scan time (``already_used`` when another scan had used the ticket, for example).
"""

from __future__ import annotations

import hmac
import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlite_utils

from gate_core.clock import utc_iso
from gate_core.codes import (
    PREFIX,
    CodeStatus,
    ParsedCode,
    issue_code,
    normalize_code,
    normalize_short_code,
    parse_code,
)
from gate_core.decision import GateConfig, ItineraryWindow, PriorUse, TicketFacts, Verdict, decide
from gate_core.facts import TicketRecord, itinerary_window, ticket_facts
from gate_core.reasons import Reason
from server.tickets.service import KeyRing, code_check, next_seq

Db = sqlite_utils.Database

MAX_STORED_CODE = 200
# Conflict kinds: a truck went through that the server's record says should not have.
DOUBLE_ACCEPT = "double_accept"  # two accepts of one ticket
ACCEPTED_AFTER_DELETE = "accepted_after_delete"  # an accept of a deleted ticket
# The kiosk let it through on its local verdict although the server refused that very scan online
# (its answer was lost or late) or would have refused it for another reason (not printed, window…).
OVERRODE_REFUSAL = "overrode_refusal"
CONFLICT_KINDS = (DOUBLE_ACCEPT, ACCEPTED_AFTER_DELETE, OVERRODE_REFUSAL)
# Reasons whose verdict carries the ticket's facts (decide() found the ticket and refused later).
_FACT_REASONS = frozenset(
    {Reason.ACCEPTED, Reason.DELETED, Reason.NOT_PRINTED, Reason.ALREADY_USED, Reason.OUTSIDE_WINDOW}
)


class ScanIdTaken(Exception):
    """The scan id is already recorded for another kiosk (kiosks must make unique ids)."""


@dataclass(frozen=True)
class ScanInput:
    """A scan as received: ``code`` is what the log keeps; ``parsed`` is None for a short code."""

    scan_id: str
    code: str
    parsed: ParsedCode | None
    scanned_at: datetime


@dataclass(frozen=True)
class OfflineScan:
    scan: ScanInput
    accepted: bool
    reason: Reason


@dataclass(frozen=True)
class Lookup:
    ticket: TicketFacts | None = None
    prior_use: PriorUse | None = None
    window: ItineraryWindow | None = None
    company_id: int | None = None


def read_code(text: str, keys: KeyRing) -> tuple[str, ParsedCode | None]:
    """Check a full code's signature (no database needed) or recognise a short code.

    Returns the form to store in the scan log and the parsed code (None for a short code, which
    only the database can resolve).
    """
    short = normalize_short_code(text)
    if short is not None:
        return short, None
    normalised = normalize_code(text)
    parsed = _reissued(normalised, keys) if normalised is not None else None
    if parsed is None:
        parsed = parse_code(text, keys.verify)  # says exactly what is wrong with the code
    # The normalised form (upper case, no spaces or dashes) is what the scan log searches; raw
    # text only when it has none (non-ASCII scanner garbage).
    return (parsed.text or text)[:MAX_STORED_CODE], parsed


# RFC 4648 base 32 digits as the digits int() reads in base 32: decoding becomes one C call
# (base64.b32decode is Python, a third of a check's time). A normalised code body is exactly
# 120 digits = 600 bits = 75 bytes, so the mapping is one to one.
_B32_AS_INT_DIGITS = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "0123456789abcdefghijklmnopqrstuv")


def _b32_bytes(body: str) -> bytes:
    """``base64.b32decode`` for a code body that :func:`normalize_code` accepted (unpadded, 5-bit aligned)."""
    return int(body.translate(_B32_AS_INT_DIGITS), 32).to_bytes(len(body) * 5 // 8, "big")


def _reissued(normalised: str, keys: KeyRing) -> ParsedCode | None:
    """The code as valid when it is exactly the code the server issues for the ids it names.

    Ed25519 signatures are deterministic and only the server holds the private keys, so equality
    proves the code genuine, and signing costs a third of verifying (this runs on every online
    redeem). Anything else (None) goes through :func:`parse_code`, the one verifier.
    """
    key_id, ticket_id, itinerary_id = _named_ids(normalised)
    key = keys.signing.get(key_id)
    if key is None or not ticket_id or not itinerary_id:
        return None
    if not hmac.compare_digest(issue_code(key, ticket_id, itinerary_id), normalised):
        return None
    return ParsedCode(CodeStatus.VALID, ticket_id, itinerary_id, key_id=key_id, text=normalised)


def _named_ids(normalised: str) -> tuple[int, int, int]:
    """(key id, ticket id, itinerary id) a normalised full code names, its signature unchecked."""
    raw = _b32_bytes(normalised[len(PREFIX) :])
    # Layout per gate_core.codes: key id (1 byte), ticket id (6), itinerary id (4), signature.
    return raw[0], int.from_bytes(raw[1:7], "big"), int.from_bytes(raw[7:11], "big")


@dataclass(frozen=True)
class ClaimedCode:
    """A well-formed full code of one of our keys, its signature not checked yet: what it claims."""

    text: str  # normalised
    ticket_id: int
    itinerary_id: int
    key_id: int


def claim_code(text: str, keys: KeyRing) -> ClaimedCode | tuple[str, ParsedCode | None]:
    """What an online redeem can tell about a scanned text without the database.

    A full code that names a ticket with one of our keys is a :class:`ClaimedCode`, confirmed in
    the redeem's transaction by :func:`_confirmed` against the digest stored when it was printed;
    anything else is :func:`read_code`'s answer (malformed, unknown key, or a short code).
    """
    normalised = normalize_code(text)
    if normalised is not None:
        key_id, ticket_id, itinerary_id = _named_ids(normalised)
        if key_id in keys.signing and ticket_id and itinerary_id:
            return ClaimedCode(normalised, ticket_id, itinerary_id, key_id)
    return read_code(text, keys)


Facts = sqlite3.Row  # a row of _FACTS_SQL, its columns by name


def _confirmed(
    db: Db, claim: ClaimedCode | tuple[str, ParsedCode | None], keys: KeyRing
) -> tuple[str, ParsedCode, Facts | None]:
    """:func:`read_code`'s answer for a claimed code, and the claimed ticket's facts row when read.

    A claimed code is valid when it is the code printed for its ticket (the digest stored then);
    otherwise (not printed, printed before digests were kept, unknown, or not the code we
    printed) the signature decides, exactly as for a code read without the database.
    """
    if not isinstance(claim, ClaimedCode):
        return claim[0], *_resolved(db, *claim)
    row = _facts_row(db, _FACTS_SQL, claim.ticket_id)
    check = row["code_check"] if row is not None else None
    if check is not None and hmac.compare_digest(check, code_check(claim.text)):
        parsed = ParsedCode(CodeStatus.VALID, claim.ticket_id, claim.itinerary_id, claim.key_id, claim.text)
        return claim.text, parsed, row
    return (*read_code(claim.text, keys), row)  # a full code: parsed, valid or not


def _resolved(db: Db, text: str, parsed: ParsedCode | None) -> tuple[ParsedCode, Facts | None]:
    """:func:`read_code`'s answer made whole: a short code (``parsed`` None) is found in the database,
    with its ticket's facts in the same read (handed to :func:`look_up` so it does not read them again)."""
    if parsed is not None:
        return parsed, None
    row = _facts_row(db, _FACTS_BY_SHORT_CODE_SQL, text)
    if row is None:
        return ParsedCode.unknown_short(text), None
    return ParsedCode.from_short(row["ticket_id"], row["itinerary_id"], text=text), row


_FACTS_SQL = (
    "SELECT t.id AS ticket_id, t.itinerary_id, t.company_id, t.printed_at IS NOT NULL AS printed, "
    "t.deleted_at IS NOT NULL AS deleted, c.name AS company_name, g.services, t.used_at, t.used_scan_id, "
    "k.name AS used_kiosk_name, t.code_check "
    "FROM tickets t JOIN companies c ON c.id = t.company_id JOIN generations g ON g.id = t.generation_id "
    "LEFT JOIN kiosks k ON k.id = t.used_kiosk_id WHERE t.id = ?"
)
_FACTS_BY_SHORT_CODE_SQL = _FACTS_SQL.replace("WHERE t.id = ?", "WHERE t.short_code = ?")


def _facts_row(db: Db, sql: str, key: int | str) -> Facts | None:
    cursor = db.conn.cursor()
    cursor.row_factory = sqlite3.Row
    return cursor.execute(sql, (key,)).fetchone()


_ITINERARY_SQL = "SELECT vessel, voyage, valid_from, valid_until FROM itineraries WHERE id = ?"


class TransactionCache:
    """Lookups that cannot change while one write transaction runs (nothing in it writes them).

    A batch of redeems shares one, so its itineraries, service names and kiosk statuses are read
    once per batch instead of once per scan.
    """

    def __init__(self) -> None:
        self.itineraries: dict[int, tuple[str, ItineraryWindow | None]] = {}
        self.services: dict[tuple[str, str], tuple[tuple[int, ...], dict[int, str]]] = {}
        self.kiosk_active: dict[int, bool] = {}
        self._last_seq: int | None = None

    def take_seq(self, db: Db) -> int:
        """The next sync sequence number (as ``next_seq``); the counter is written once, by :meth:`save_seq`.

        Nothing else writes in this transaction, and a number left unused by a redeem that rolled
        back is only a gap, which cursors allow.
        """
        if self._last_seq is None:
            self._last_seq = db.conn.execute("SELECT value FROM sync_counter WHERE id = 1").fetchone()[0]
        self._last_seq += 1
        return self._last_seq

    def save_seq(self, db: Db) -> None:
        if self._last_seq is not None:
            db.conn.execute("UPDATE sync_counter SET value = ? WHERE id = 1", (self._last_seq,))


def _itinerary(db: Db, itinerary_id: int, cache: TransactionCache) -> tuple[str, ItineraryWindow | None]:
    found = cache.itineraries.get(itinerary_id)
    if found is not None:
        return found
    row = db.conn.execute(_ITINERARY_SQL, (itinerary_id,)).fetchone()
    if row is None:
        found = ("", None)
    else:
        vessel, voyage, valid_from, valid_until = row
        start, end = datetime.fromisoformat(valid_from), datetime.fromisoformat(valid_until)
        found = (f"{vessel} {voyage}", itinerary_window(itinerary_id, start, end))
    cache.itineraries[itinerary_id] = found
    return found


def _service_names(db: Db, services: str, lang: str, cache: TransactionCache) -> tuple[tuple[int, ...], dict[int, str]]:
    """A generation's service ids (its ``services`` JSON) and their names in ``lang``."""
    found = cache.services.get((services, lang))
    if found is not None:
        return found
    service_ids = tuple(json.loads(services))
    names: dict[int, str] = {}
    if service_ids:
        column = "name_en" if lang == "en" else "name_es"
        names = dict(
            db.conn.execute(
                f"SELECT id, {column} FROM services WHERE id IN ({','.join('?' * len(service_ids))})", service_ids
            ).fetchall()
        )
    cache.services[(services, lang)] = found = (service_ids, names)
    return found


def _kiosk_active(db: Db, kiosk_id: int, cache: TransactionCache) -> bool:
    found = cache.kiosk_active.get(kiosk_id)
    if found is None:
        status = db.conn.execute("SELECT status FROM kiosks WHERE id = ?", (kiosk_id,)).fetchone()
        found = cache.kiosk_active[kiosk_id] = status is not None and status[0] == "active"
    return found


def look_up(
    db: Db,
    code: ParsedCode,
    lang: str = "es",
    cache: TransactionCache | None = None,
    read: Facts | None = None,
) -> Lookup:
    """Everything decide() needs about a code's ticket: facts, prior use and itinerary window.

    ``read`` is the ticket's facts row when this transaction has read it already.
    """
    if not code.valid:
        return Lookup()
    assert code.ticket_id is not None and code.itinerary_id is not None
    cache = cache or TransactionCache()
    label, window = _itinerary(db, code.itinerary_id, cache)
    row = read if read is not None and read["ticket_id"] == code.ticket_id else None
    row = row or _facts_row(db, _FACTS_SQL, code.ticket_id)
    if row is None:
        return Lookup(window=window)
    if row["itinerary_id"] != code.itinerary_id:
        label = _itinerary(db, row["itinerary_id"], cache)[0]
    service_ids, service_names = _service_names(db, row["services"], lang, cache)
    record = TicketRecord(
        ticket_id=code.ticket_id,
        itinerary_id=row["itinerary_id"],
        printed=bool(row["printed"]),
        deleted=bool(row["deleted"]),
        company_name=row["company_name"],
        itinerary_label=label,
        service_ids=service_ids,
        service_names=service_names,
        used_at=datetime.fromisoformat(row["used_at"]) if row["used_at"] else None,
        used_kiosk_name=row["used_kiosk_name"] or "",
        used_scan_id=row["used_scan_id"] or "",
    )
    ticket, prior = ticket_facts(record)
    return Lookup(ticket, prior, window, row["company_id"])


def facts_for_code(db: Db, text: str, keys: KeyRing, lang: str = "es") -> tuple[ParsedCode, Lookup]:
    """A scanned text read and looked up as the server decides it (a kiosk's cache answers the same)."""
    parsed, read = _resolved(db, *read_code(text, keys))
    return parsed, look_up(db, parsed, lang, read=read)


class AlreadyUsed(sqlite3.IntegrityError):
    """A second use of one ticket reached the database (decide() should have refused it)."""


def _record_use(db: Db, ticket_id: int, scan_id: str, kiosk_id: int, used_at: str, seq: int | None = None) -> None:
    seq = next_seq(db) if seq is None else seq
    changed = db.conn.execute(
        "UPDATE tickets SET used_at = ?, used_scan_id = ?, used_kiosk_id = ?, used_seq = ? "
        "WHERE id = ? AND used_at IS NULL",
        (used_at, scan_id, kiosk_id, seq, ticket_id),
    ).rowcount
    # Whatever happened above, a used ticket is never used again: this is the database's word
    # (the redeem's savepoint undoes it), decide() has already refused such a scan.
    if changed != 1:
        raise AlreadyUsed(f"ticket {ticket_id} is already used or does not exist")


def _insert_scan(
    db: Db,
    scan: ScanInput,
    kiosk_id: int,
    lookup: Lookup,
    ticket_id: int | None,
    received_at: str,
    mode: str,
    accepted: bool,
    reason: Reason,
    local_reason: Reason | None = None,
) -> None:
    db.conn.execute(
        "INSERT INTO scans (scan_id, kiosk_id, ticket_id, company_id, code, scanned_at, received_at, mode, accepted, "
        "reason, local_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            scan.scan_id,
            kiosk_id,
            ticket_id if lookup.ticket else None,
            lookup.company_id,
            scan.code,
            utc_iso(scan.scanned_at),
            received_at,
            mode,
            int(accepted),
            reason.value,
            local_reason.value if local_reason else None,
        ),
    )


def _replayed_verdict(db: Db, accepted: int, reason: str, code: str, keys: KeyRing, lang: str) -> Verdict:
    """The verdict first given for a scan, rebuilt from its log row (a retry gets the same answer)."""
    reason_ = Reason(reason)
    parsed, lookup = facts_for_code(db, code, keys, lang)
    trusted = parsed.valid and reason_ is not Reason.REVOKED_KIOSK
    lookup = lookup if trusted else Lookup()
    return Verdict(
        accepted=bool(accepted),
        reason=reason_,
        ticket_id=parsed.ticket_id if trusted else None,
        itinerary_id=parsed.itinerary_id if trusted else None,
        ticket=lookup.ticket if reason_ in _FACT_REASONS else None,
        prior_use=lookup.prior_use if reason_ is Reason.ALREADY_USED else None,
    )


def redeem_scan(
    db: Db,
    kiosk_id: int,
    scan_id: str,
    claim: ClaimedCode | tuple[str, ParsedCode | None],
    scanned_at: datetime,
    keys: KeyRing,
    allowed_itineraries: frozenset[int] | None,
    now: datetime,
    lang: str = "es",
    cache: TransactionCache | None = None,
) -> tuple[Verdict, bool]:
    """Decide an online scan and, when accepted, use the ticket; returns (verdict, newly used).

    ``claim`` is :func:`claim_code`'s answer for the scanned text. Idempotent by scan id: the "seen it?" lookup runs in
    the same write transaction as the insert, so a retry (to any worker process) returns the
    first verdict and changes nothing.
    """
    own_cache = cache is None
    cache = cache or TransactionCache()
    existing = db.conn.execute(
        "SELECT kiosk_id, accepted, reason, code FROM scans WHERE scan_id = ?", (scan_id,)
    ).fetchone()
    if existing is not None:
        if existing[0] != kiosk_id:
            raise ScanIdTaken(scan_id)
        return _replayed_verdict(db, existing[1], existing[2], existing[3], keys, lang), False
    text, code, read = _confirmed(db, claim, keys)
    scan = ScanInput(scan_id, text, code, scanned_at)
    lookup = look_up(db, code, lang, cache, read)
    gate = GateConfig(kiosk_revoked=not _kiosk_active(db, kiosk_id, cache), allowed_itineraries=allowed_itineraries)
    verdict = decide(code, lookup.ticket, lookup.prior_use, lookup.window, now, gate)
    received = utc_iso(now)
    if verdict.accepted:
        assert verdict.ticket_id is not None
        _record_use(db, verdict.ticket_id, scan.scan_id, kiosk_id, received, cache.take_seq(db))
    _insert_scan(db, scan, kiosk_id, lookup, code.ticket_id, received, "online", verdict.accepted, verdict.reason)
    if own_cache:
        cache.save_seq(db)
    return verdict, verdict.accepted


def redeem_batch(db: Db, calls: list[tuple]) -> list[tuple[Verdict, bool] | Exception]:
    """:func:`redeem_scan` for each call's arguments, one after another in this one transaction.

    Each runs in its own savepoint, so a failure undoes that redeem only and is returned in its
    place; the others commit together (see ``server.gate.batching``).
    """
    cache = TransactionCache()
    outcomes: list[tuple[Verdict, bool] | Exception] = []
    for args in calls:
        db.conn.execute("SAVEPOINT redeem")
        try:
            outcomes.append(redeem_scan(db, *args, cache=cache))
        except Exception as exc:  # noqa: BLE001 - handed to that redeem's caller
            if not db.conn.in_transaction:
                # SQLite undid the whole transaction itself (a full disk does that): the batch
                # fails as one, and every redeem in it gets this error (503 storage_unavailable).
                raise
            db.conn.execute("ROLLBACK TO redeem")
            outcomes.append(exc)
        db.conn.execute("RELEASE redeem")
    cache.save_seq(db)
    return outcomes


# --- offline uploads --------------------------------------------------------------------------


def _record_offline(
    db: Db, kiosk_id: int, item: OfflineScan, allowed: frozenset[int] | None, received: str
) -> tuple[dict[str, Any], int | None]:
    """Log one offline scan; record its use or a conflict.

    Returns its result (as :func:`_offline_result` reads it back for a re-upload) and the id of the
    ticket whose use changed, if any.
    """
    scan = item.scan
    code, read = _resolved(db, scan.code, scan.parsed)
    lookup = look_up(db, code, read=read)
    if not item.accepted:
        _insert_scan(db, scan, kiosk_id, lookup, code.ticket_id, received, "offline", False, item.reason, item.reason)
        return _result(scan.scan_id, "logged", item.reason), None
    # The truck has passed: what would the server have said at that moment?
    verdict = decide(
        code, lookup.ticket, lookup.prior_use, lookup.window, scan.scanned_at, GateConfig(allowed_itineraries=allowed)
    )
    _insert_scan(db, scan, kiosk_id, lookup, code.ticket_id, received, "offline", True, verdict.reason, item.reason)
    ticket = lookup.ticket
    if ticket is None:
        # Forged or unknown: the log row is the record; there is no ticket to use.
        return _result(scan.scan_id, "logged", verdict.reason), None
    kind, changed = _local_accept(db, ticket, lookup.prior_use, verdict.accepted, scan.scan_id, kiosk_id, received)
    if kind is None:
        return _result(scan.scan_id, "use_recorded", verdict.reason), changed
    return _result(scan.scan_id, "conflict", verdict.reason, kind), changed


def _local_accept(
    db: Db,
    ticket: TicketFacts,
    prior: PriorUse | None,
    server_agrees: bool,
    scan_id: str,
    kiosk_id: int,
    received: str,
    overrode: bool = False,
) -> tuple[str | None, int | None]:
    """Record that a kiosk let ``ticket`` through with scan ``scan_id`` (already in the log).

    ``server_agrees`` is whether the server's rules accept the scan at its time; ``overrode`` says
    the server had refused this very scan online, which names every conflict it makes. Returns
    the conflict kind recorded (None when there is none) and the ticket id whose use changed (for
    the live push). An unused ticket becomes used by this scan whatever else is wrong with it, so
    that it cannot let a second truck in; of two uses the earlier scan is the first (the scans'
    own times, upload order breaking a tie), whichever kiosk uploaded first.
    """
    ticket_id = ticket.ticket_id
    first, second, reported, changed = (prior.scan_id if prior else ""), scan_id, scan_id, None
    if ticket.deleted:
        kind: str | None = ACCEPTED_AFTER_DELETE
    elif prior is None:
        _move_use(db, ticket_id, scan_id, kiosk_id)
        kind, changed = (None if server_agrees else OVERRODE_REFUSAL), ticket_id
    else:
        kind = DOUBLE_ACCEPT
        if _scanned_before(db, scan_id, prior.scan_id):
            _move_use(db, ticket_id, scan_id, kiosk_id)
            first, second, changed = scan_id, prior.scan_id, ticket_id
    if kind is not None:
        kind = OVERRODE_REFUSAL if overrode else kind
        _insert_conflict(db, ticket_id, kind, first, second, received, reported_by=reported)
    return kind, changed


def _scanned_before(db: Db, scan_id: str, other_scan_id: str) -> bool:
    """Whether scan ``scan_id`` happened before ``other_scan_id`` by the scans' own (kiosk) times.

    Upload order (the log's id) breaks a tie; a use whose scan is not in the log came first.
    """
    first, second = (
        db.conn.execute("SELECT scanned_at, id FROM scans WHERE scan_id = ?", (s,)).fetchone()
        for s in (scan_id, other_scan_id)
    )
    if first is None or second is None:
        return False
    return (datetime.fromisoformat(first[0]), first[1]) < (datetime.fromisoformat(second[0]), second[1])


def _move_use(db: Db, ticket_id: int, scan_id: str, kiosk_id: int) -> None:
    """Make scan ``scan_id`` the ticket's use (at its scan time), whether or not another scan held it."""
    scanned_at = db.conn.execute("SELECT scanned_at FROM scans WHERE scan_id = ?", (scan_id,)).fetchone()[0]
    db.conn.execute(
        "UPDATE tickets SET used_at = ?, used_scan_id = ?, used_kiosk_id = ?, used_seq = ? WHERE id = ?",
        (scanned_at, scan_id, kiosk_id, next_seq(db), ticket_id),
    )


def _result(scan_id: str, outcome: str, reason: Reason | str, conflict: str | None = None) -> dict[str, Any]:
    return {"scan_id": scan_id, "outcome": outcome, "reason": Reason(reason).value, "conflict": conflict}


def _insert_conflict(
    db: Db, ticket_id: int, kind: str, first: str, second: str, created: str, reported_by: str | None = None
) -> None:
    """Record a conflict; ``reported_by`` is the scan whose upload found it (the second, unless reordered)."""
    db.conn.execute(
        "INSERT INTO conflicts (ticket_id, kind, first_scan_id, second_scan_id, created_at, reported_scan_id) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (ticket_id, kind, first, second, created, reported_by or second),
    )


def _offline_result(db: Db, scan_id: str) -> dict[str, Any]:
    """The server's outcome for a recorded scan, derived from what is stored (so re-uploads agree)."""
    accepted, reason, ticket_id = db.conn.execute(
        "SELECT accepted, reason, ticket_id FROM scans WHERE scan_id = ?", (scan_id,)
    ).fetchone()
    conflict = db.conn.execute(
        "SELECT id, kind FROM conflicts WHERE reported_scan_id = ? ORDER BY id LIMIT 1", (scan_id,)
    ).fetchone()
    if conflict is not None:
        return _result(scan_id, "conflict", reason, conflict[1])
    # An accept that was the ticket's use when it was reported stays "use_recorded", even once an
    # earlier scan reported later has taken the first place in a conflict.
    used = db.conn.execute(
        "SELECT 1 FROM tickets WHERE id = ? AND used_scan_id = ? UNION ALL "
        "SELECT 1 FROM conflicts WHERE first_scan_id = ? OR second_scan_id = ?",
        (ticket_id, scan_id, scan_id, scan_id),
    ).fetchone()
    return _result(scan_id, "use_recorded" if accepted and used else "logged", reason)


def _report_of_a_known_scan(
    db: Db, kiosk_id: int, item: OfflineScan, received: str
) -> tuple[dict[str, Any], int | None]:
    """A scan the server has recorded already (an online redeem, or an earlier upload), reported again.

    The same answer as before, except when the kiosk says it let the truck through and the server's
    record says it did not (its online refusal never reached the kiosk in time): the log then shows
    what the kiosk did, and the entry is a conflict the supervisor sees.
    """
    scan_id = item.scan.scan_id
    recorded = db.conn.execute("SELECT accepted, ticket_id FROM scans WHERE scan_id = ?", (scan_id,)).fetchone()
    if not item.accepted or recorded[0]:
        return _offline_result(db, scan_id), None
    db.conn.execute("UPDATE scans SET accepted = 1, local_reason = ? WHERE scan_id = ?", (item.reason.value, scan_id))
    ticket_id = recorded[1]
    if ticket_id is None:
        return _offline_result(db, scan_id), None
    itinerary_id = db.conn.execute("SELECT itinerary_id FROM tickets WHERE id = ?", (ticket_id,)).fetchone()[0]
    lookup = look_up(db, ParsedCode.from_short(ticket_id, itinerary_id))
    assert lookup.ticket is not None  # the log's ticket id names a ticket (tickets are never removed)
    _kind, changed = _local_accept(
        db, lookup.ticket, lookup.prior_use, False, scan_id, kiosk_id, received, overrode=True
    )
    return _offline_result(db, scan_id), changed


def record_offline_scans(
    db: Db, kiosk_id: int, items: list[OfflineScan], allowed: frozenset[int] | None, now: datetime
) -> tuple[list[dict[str, Any]], list[int]]:
    """Record a batch of offline scans, each exactly once; returns per-scan results and used ticket ids."""
    received = utc_iso(now)
    results: list[dict[str, Any]] = []
    used: list[int] = []
    for item in items:
        owner = db.conn.execute("SELECT kiosk_id FROM scans WHERE scan_id = ?", (item.scan.scan_id,)).fetchone()
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
            result, ticket_id = _record_offline(db, kiosk_id, item, allowed, received)
        else:  # recorded before: the same answer, read from what was stored (unless the kiosk overrode it)
            result, ticket_id = _report_of_a_known_scan(db, kiosk_id, item, received)
        if ticket_id is not None:
            used.append(ticket_id)
        results.append(result)
    return results, used
