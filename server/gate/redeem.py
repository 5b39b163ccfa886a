"""Redeeming scans online (atomic single use), and the lookups uploads share (``server.gate.uploads``).

Both run inside one write transaction on the database's single writer thread, so "is it used?"
and "mark it used" can never interleave with another redeem or with a deletion (across nodes
on PostgreSQL, the ticket's row lock sees to it: see :func:`redeem_batch`). The rules are
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
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

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
from gate_core.facts import TicketRecord, ticket_facts
from gate_core.reasons import Reason
from server.gate.transaction_cache import (
    FACTS_BY_SHORT_CODE_SQL,
    INSERT_SCAN_SQL,
    Facts,
    RecordedScan,
    TransactionCache,
    facts_row_by,
)
from server.sql import Connection, IntegrityError
from server.tickets.service import KeyRing, code_check

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


class KioskRefused(Exception):
    """The token a redeem came with is no longer its kiosk's, as committed: revoked, or replaced by an enrolment."""

    def __init__(self, revoked: bool) -> None:
        super().__init__("revoked" if revoked else "replaced")
        self.revoked = revoked


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


def _confirmed(
    db: Db, claim: ClaimedCode | tuple[str, ParsedCode | None], keys: KeyRing, cache: TransactionCache
) -> tuple[str, ParsedCode, Facts | None]:
    """:func:`read_code`'s answer for a claimed code, and the claimed ticket's facts row when read.

    A claimed code is valid when it is the code printed for its ticket (the digest stored then);
    otherwise (not printed, printed before digests were kept, unknown, or not the code we
    printed) the signature decides, exactly as for a code read without the database.
    """
    if not isinstance(claim, ClaimedCode):
        return claim[0], *resolve_code(db, *claim)
    row = cache.facts_row(db, claim.ticket_id)
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
    row = facts_row_by(db, FACTS_BY_SHORT_CODE_SQL, text)
    if row is None:
        return ParsedCode.unknown_short(text), None
    return ParsedCode.from_short(row["ticket_id"], row["itinerary_id"], text=text), row


def _itinerary(db: Db, itinerary_id: int, cache: TransactionCache) -> tuple[str, ItineraryWindow | None]:
    found = cache.itineraries.get(itinerary_id)
    if found is None:
        cache.read_itineraries(db, [itinerary_id])
        found = cache.itineraries[itinerary_id]
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
        cache.read_kiosks(db, [kiosk_id])
        found = cache.kiosk_active[kiosk_id]
    return found


def _check_kiosk_token(db: Db, kiosk_id: int, token_hash: str, cache: TransactionCache) -> None:
    """For a kiosk a node authenticated from its cache: still active, and the token still its own."""
    if not _kiosk_active(db, kiosk_id, cache):
        raise KioskRefused(revoked=True)
    if cache.kiosk_tokens.get(kiosk_id) != token_hash:
        raise KioskRefused(revoked=False)


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
    row = row or cache.facts_row(db, code.ticket_id)
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


def _record_use(
    db: Db, ticket_id: int, scan_id: str, kiosk_id: int, used_at: str, cache: TransactionCache | None = None
) -> None:
    """Use the ticket; its sync number comes at the end of the batch (:meth:`TransactionCache.number_uses`),
    or at once when there is no batch (``cache`` None)."""
    changed = db.execute(
        "UPDATE tickets SET used_at = ?, used_scan_id = ?, used_kiosk_id = ? WHERE id = ? AND used_at IS NULL",
        (used_at, scan_id, kiosk_id, ticket_id),
    ).rowcount
    # Whatever happened above, a used ticket is never used again: this is the database's word
    # (the batch's savepoint undoes it), decide() has already refused such a scan.
    if changed != 1:
        raise AlreadyUsed(f"ticket {ticket_id} is already used or does not exist")
    numbering = cache or TransactionCache()
    numbering.note_use(ticket_id)
    if cache is None:
        numbering.number_uses(db)


def insert_scan(db: Db, values: tuple) -> None:
    """Log a scan: :func:`scan_values`' row."""
    db.execute(INSERT_SCAN_SQL, values)


def scan_values(
    scan: ScanInput,
    kiosk_id: int,
    lookup: Lookup,
    ticket_id: int | None,
    received_at: str,
    mode: str,
    accepted: bool,
    reason: Reason,
    local_reason: Reason | None = None,
) -> tuple:
    """A scan's row in the log, with the server's reason and, for an offline one, the kiosk's (``local_reason``)."""
    return (
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
    kiosk_token: str | None = None,
    *,
    cache: TransactionCache,
) -> tuple[Verdict, bool]:
    """Decide an online scan and, when accepted, use the ticket; returns (verdict, newly used).

    ``claim`` is :func:`claim_code`'s answer for the scanned text. Runs inside
    :func:`redeem_batch`, which has locked the ticket and read the scan ids. Idempotent by scan
    id: a retry (to any node) returns the first verdict and changes nothing. ``kiosk_token``: the
    hash of the token the kiosk came with, when no read checked it (raises :class:`KioskRefused`).
    """
    if kiosk_token is not None:
        _check_kiosk_token(db, kiosk_id, kiosk_token, cache)
    existing = cache.recorded_scan(db, scan_id)
    if existing is not None:
        _scan_id, owner, accepted, reason, code_text = existing
        if owner != kiosk_id:
            raise ScanIdTaken(scan_id)
        return _replayed_verdict(db, accepted, reason, code_text, keys, lang), False
    text, code, read = _confirmed(db, claim, keys, cache)
    scan = ScanInput(scan_id, text, code, scanned_at)
    lookup = look_up(db, code, lang, cache, read)
    gate = GateConfig(kiosk_revoked=not _kiosk_active(db, kiosk_id, cache), allowed_itineraries=allowed_itineraries)
    verdict = decide(code, lookup.ticket, lookup.prior_use, lookup.window, now, gate)
    received = utc_iso(now)
    if verdict.accepted:
        assert verdict.ticket_id is not None
        _record_use(db, verdict.ticket_id, scan.scan_id, kiosk_id, received, cache)
    values = scan_values(scan, kiosk_id, lookup, code.ticket_id, received, "online", verdict.accepted, verdict.reason)
    cache.log_scan(db, values, RecordedScan(scan_id, kiosk_id, int(verdict.accepted), verdict.reason.value, text))
    return verdict, verdict.accepted


def _named_tickets(claims: Iterable[ClaimedCode | tuple[str, ParsedCode | None]]) -> tuple[list[int], list[str]]:
    """The ticket ids and the short codes that scanned codes name (for :meth:`TransactionCache.lock_tickets`)."""
    ids: list[int] = []
    shorts: list[str] = []
    for claim in claims:
        if isinstance(claim, ClaimedCode):
            ids.append(claim.ticket_id)
        elif claim[1] is None:
            shorts.append(claim[0])
        elif claim[1].ticket_id is not None:  # a full code of a key the server no longer signs with
            ids.append(claim[1].ticket_id)
    return ids, shorts


class _RedeemFailed(Exception):
    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(index, error)
        self.index, self.error = index, error


_AGAIN: Exception = Exception("run again")  # a failed redeem given a second run (see redeem_batch)


def redeem_batch(db: Db, calls: list[tuple]) -> list[tuple[Verdict, bool] | Exception]:
    """:func:`redeem_scan` for each call's arguments, one after another in this one transaction.

    Locking (what makes single use and scan-id idempotency hold across nodes on PostgreSQL): the
    batch first locks the rows of every ticket its codes name, in id order, in one statement, and
    only then reads which scan ids are recorded. Two redeems of one code, on any nodes, name one
    ticket, so the later transaction waits for the earlier's COMMIT and then (READ COMMITTED:
    each statement sees what committed before it) finds its use and its scan id: a retried
    scan id gets the first answer, a second truck ``already_used``. Redeems of other tickets do
    not wait. A scan id whose code names no ticket (forged, unknown) is kept unique by the scans
    table: the second insert waits for the first transaction and fails; that redeem runs again
    and replays the first answer. The sync counter is locked only at the end
    (:meth:`TransactionCache.number_uses`), so commits stay in sync-number order.

    A redeem that fails is undone by rolling back to the batch's savepoint and running the
    others again without it (failures are rare; a savepoint per redeem costs two round trips
    each on PostgreSQL); its exception is returned in its place. The scans are logged in one
    statement at the end; when that fails, the batch runs again logging each at once.
    """
    failed: dict[int, Exception] = {}
    scans_at_end = True
    db.execute("SAVEPOINT redeems")
    while True:
        cache = TransactionCache(scans_at_end)
        try:
            outcomes = _redeem_each(db, calls, cache, failed)
            cache.write_scans(db)
        except IntegrityError:
            # A scan id of the batch recorded meanwhile by another node (its code names no ticket,
            # so no lock kept them apart): again, logging each scan at once, to find which.
            if not db.in_transaction:
                raise
            db.execute("ROLLBACK TO redeems")
            scans_at_end = False
            continue
        except _RedeemFailed as failure:
            if not db.in_transaction or getattr(failure.error, "sqlstate", None):
                # SQLite undid the whole transaction itself (a full disk does that), or PostgreSQL
                # failed it (a deadlock, a lost connection; its constraint errors come as
                # IntegrityError): the batch fails as one, retried or answered 503 (batching).
                raise failure.error from None
            db.execute("ROLLBACK TO redeems")
            # An integrity error is another transaction's scan id or use, committed meanwhile:
            # a second run finds it. Anything else, or a second failure, is that redeem's answer.
            again = isinstance(failure.error, IntegrityError) and failure.index not in failed
            failed[failure.index] = _AGAIN if again else failure.error
            continue
        db.execute("RELEASE redeems")
        cache.number_uses(db)  # last: the counter stays locked from here to COMMIT
        return outcomes


def _redeem_each(
    db: Db, calls: list[tuple], cache: TransactionCache, failed: dict[int, Exception]
) -> list[tuple[Verdict, bool] | Exception]:
    """One run of :func:`redeem_batch`'s redeems; raises :class:`_RedeemFailed` at the first that fails."""
    runs = [args for index, args in enumerate(calls) if failed.get(index, _AGAIN) is _AGAIN]
    cache.lock_tickets(db, *_named_tickets(args[2] for args in runs))
    cache.read_scans(db, (args[1] for args in runs))
    cache.read_kiosks(db, (args[0] for args in runs))
    outcomes: list[tuple[Verdict, bool] | Exception] = []
    for index, args in enumerate(calls):
        error = failed.get(index, _AGAIN)
        if error is not _AGAIN:
            outcomes.append(error)
            continue
        try:
            outcomes.append(redeem_scan(db, *args, cache=cache))
        except (ScanIdTaken, KioskRefused) as exc:  # found before anything was written: no need to undo
            outcomes.append(exc)
        except Exception as exc:  # noqa: BLE001 - handed to that redeem's caller
            raise _RedeemFailed(index, exc) from exc
    return outcomes
