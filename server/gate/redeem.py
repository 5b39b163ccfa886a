"""Redeeming scans online (atomic single use), and the lookups uploads share (``server.gate.uploads``).

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
from dataclasses import dataclass
from datetime import datetime
from typing import cast

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
from server.notify import TICKETS, announce
from server.sql import Connection, IntegrityError, Row
from server.tickets.service import KeyRing, code_check, next_seq

Db = Connection

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


Facts = Row  # a row of _FACTS_SQL, its columns by name


def _confirmed(
    db: Db, claim: ClaimedCode | tuple[str, ParsedCode | None], keys: KeyRing
) -> tuple[str, ParsedCode, Facts | None]:
    """:func:`read_code`'s answer for a claimed code, and the claimed ticket's facts row when read.

    A claimed code is valid when it is the code printed for its ticket (the digest stored then);
    otherwise (not printed, printed before digests were kept, unknown, or not the code we
    printed) the signature decides, exactly as for a code read without the database.
    """
    if not isinstance(claim, ClaimedCode):
        return claim[0], *resolve_code(db, *claim)
    row = _facts_row(db, _FACTS_SQL, claim.ticket_id)
    check = row["code_check"] if row is not None else None
    if check is not None and hmac.compare_digest(check, code_check(claim.text)):
        parsed = ParsedCode(CodeStatus.VALID, claim.ticket_id, claim.itinerary_id, claim.key_id, claim.text)
        return claim.text, parsed, row
    text, signed = read_code(claim.text, keys)
    assert signed is not None  # a full code always parses (valid or not); only a short code needs the database
    return text, signed, row


def resolve_code(db: Db, text: str, parsed: ParsedCode | None) -> tuple[ParsedCode, Facts | None]:
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
    return cast(Facts | None, db.execute(sql, (key,)).fetchone())


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
            self.hold_gate(db)
        assert self._last_seq is not None
        self._last_seq += 1
        return self._last_seq

    def hold_gate(self, db: Db) -> None:
        """Read the sync counter, on PostgreSQL locking its row until COMMIT.

        Every transaction that records scans (redeems, offline uploads, on any node) takes this
        lock first, so they run one after another, each deciding on the uses and scan ids the ones
        before it committed: single use and scan-id idempotency hold across nodes as they do in
        SQLite's one writer. Its numbers are then also handed out in commit order, which a kiosk's
        sync cursor needs.
        """
        sql = f"SELECT value FROM sync_counter WHERE id = 1{db.dialect.for_update}"
        self._last_seq = db.execute(sql).fetchone()[0]

    def save_seq(self, db: Db) -> None:
        if self._last_seq is not None:
            db.execute("UPDATE sync_counter SET value = ? WHERE id = 1", (self._last_seq,))
            announce(db, TICKETS)  # other nodes' live hubs push the uses when this transaction commits


def _itinerary(db: Db, itinerary_id: int, cache: TransactionCache) -> tuple[str, ItineraryWindow | None]:
    found = cache.itineraries.get(itinerary_id)
    if found is not None:
        return found
    row = db.execute(_ITINERARY_SQL, (itinerary_id,)).fetchone()
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
            db.execute(
                f"SELECT id, {column} FROM services WHERE id IN ({','.join('?' * len(service_ids))})", service_ids
            ).fetchall()
        )
    cache.services[(services, lang)] = found = (service_ids, names)
    return found


def _kiosk_active(db: Db, kiosk_id: int, cache: TransactionCache) -> bool:
    found = cache.kiosk_active.get(kiosk_id)
    if found is None:
        status = db.execute("SELECT status FROM kiosks WHERE id = ?", (kiosk_id,)).fetchone()
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
    parsed, read = resolve_code(db, *read_code(text, keys))
    return parsed, look_up(db, parsed, lang, read=read)


class AlreadyUsed(IntegrityError):
    """A second use of one ticket reached the database (decide() should have refused it)."""


def _record_use(db: Db, ticket_id: int, scan_id: str, kiosk_id: int, used_at: str, seq: int | None = None) -> None:
    seq = next_seq(db) if seq is None else seq
    changed = db.execute(
        "UPDATE tickets SET used_at = ?, used_scan_id = ?, used_kiosk_id = ?, used_seq = ? "
        "WHERE id = ? AND used_at IS NULL",
        (used_at, scan_id, kiosk_id, seq, ticket_id),
    ).rowcount
    # Whatever happened above, a used ticket is never used again: this is the database's word
    # (the redeem's savepoint undoes it), decide() has already refused such a scan.
    if changed != 1:
        raise AlreadyUsed(f"ticket {ticket_id} is already used or does not exist")


def insert_scan(
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
    """Log a scan with the server's reason and, for an offline one, the kiosk's (``local_reason``)."""
    db.execute(
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
    *,
    cache: TransactionCache | None = None,
) -> tuple[Verdict, bool]:
    """Decide an online scan and, when accepted, use the ticket; returns (verdict, newly used).

    ``claim`` is :func:`claim_code`'s answer for the scanned text. Idempotent by scan id: the "seen it?" lookup runs in
    the same write transaction as the insert, so a retry (to any worker process) returns the
    first verdict and changes nothing.
    """
    own_cache = cache is None
    cache = cache or TransactionCache()
    if own_cache and db.dialect.for_update:
        cache.hold_gate(db)
    existing = db.execute("SELECT kiosk_id, accepted, reason, code FROM scans WHERE scan_id = ?", (scan_id,)).fetchone()
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
    insert_scan(db, scan, kiosk_id, lookup, code.ticket_id, received, "online", verdict.accepted, verdict.reason)
    if own_cache:
        cache.save_seq(db)
    return verdict, verdict.accepted


def redeem_batch(db: Db, calls: list[tuple]) -> list[tuple[Verdict, bool] | Exception]:
    """:func:`redeem_scan` for each call's arguments, one after another in this one transaction.

    Each runs in its own savepoint, so a failure undoes that redeem only and is returned in its
    place; the others commit together (see ``server.gate.batching``).
    """
    cache = TransactionCache()
    if db.dialect.for_update:
        cache.hold_gate(db)
    outcomes: list[tuple[Verdict, bool] | Exception] = []
    for args in calls:
        db.execute("SAVEPOINT redeem")
        try:
            outcomes.append(redeem_scan(db, *args, cache=cache))
        except Exception as exc:  # noqa: BLE001 - handed to that redeem's caller
            if not db.in_transaction:
                # SQLite undid the whole transaction itself (a full disk does that): the batch
                # fails as one, and every redeem in it gets this error (503 storage_unavailable).
                raise
            db.execute("ROLLBACK TO redeem")
            outcomes.append(exc)
        db.execute("RELEASE redeem")
    cache.save_seq(db)
    return outcomes
