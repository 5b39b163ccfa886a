"""Gate tickets: catalogue (itineraries, services), purchases and balance, generation, print, delete.

Every customer-facing function takes the caller's ``company_id`` and filters by it; a ticket of
another company is simply "not found". Write functions run in one transaction on the writer thread
(see ``server.db``), which is what makes "two generations never overspend the balance" and
"delete never races a redeem" hold.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, cast

from gate_core.clock import utc_iso
from gate_core.codes import SigningKey, VerifyKey, issue_code, new_short_code
from server import forms
from server.accounts.audit import audit
from server.csv_import import validated_rows
from server.db import lock_for_update, one, scalar
from server.forms import FieldErrors, ValidationFailed
from server.i18n import Msg
from server.notify import KEYS, TICKETS, announce
from server.sql import Connection
from server.timefmt import NoSuchLocalTime, read_local

Db = Connection
MAX_GENERATE = 10_000


class TicketError(Exception):
    """A refused ticket action with a stable code (``not_found``, ``used``, ``deleted``, ``balance``…)."""

    def __init__(self, code: str, message: Msg) -> None:
        super().__init__(code)
        self.code = code
        self.message = message


def stored_at(now: datetime) -> str:
    """``now`` (the handler's clock, passed down) as the tickets tables store times: UTC ISO text, to the second."""
    return utc_iso(now, "seconds")


def next_seq(db: Db, count: int = 1) -> int:
    """Reserve ``count`` sync sequence numbers; returns the first. Runs inside the write transaction.

    On PostgreSQL the counter's row stays locked until COMMIT, so numbers become visible in the
    order they were handed out (what a kiosk's sync cursor needs): take them as late in the
    transaction as the caller can (the gate's redeems take theirs just before COMMIT).
    """
    announce(db, TICKETS)  # other nodes' live hubs push the change when this transaction commits
    last = scalar(db, "UPDATE sync_counter SET value = value + ? WHERE id = 1 RETURNING value", (count,))
    return last - count + 1


# --- signing keys -----------------------------------------------------------------------------


def ensure_signing_key(db: Db, now: datetime) -> None:
    """Create the first Ed25519 signing key if there is none."""
    if scalar(db, "SELECT COUNT(*) FROM signing_keys WHERE retired_at IS NULL"):
        return
    key_id = (scalar(db, "SELECT MAX(key_id) FROM signing_keys") or 0) + 1
    key = SigningKey.generate(key_id)
    db.execute(
        "INSERT INTO signing_keys (key_id, private_key, public_key, created_at) VALUES (?, ?, ?, ?)",
        (key_id, key.private_bytes(), key.public_key().public_bytes(), stored_at(now)),
    )


def rotate_signing_key(db: Db, now: datetime) -> int:
    """Start signing new tickets with a fresh key; old keys keep verifying the tickets they signed."""
    key_id = (scalar(db, "SELECT MAX(key_id) FROM signing_keys") or 0) + 1
    if key_id > 255:
        raise ValueError("key ids are exhausted")
    key = SigningKey.generate(key_id)
    db.execute(
        "INSERT INTO signing_keys (key_id, private_key, public_key, created_at) VALUES (?, ?, ?, ?)",
        (key_id, key.private_bytes(), key.public_key().public_bytes(), stored_at(now)),
    )
    next_seq(db)  # kiosks learn the new public key on their next sync
    announce(db, KEYS)  # other nodes load it when this transaction commits
    return key_id


@dataclass(frozen=True)
class KeyRing:
    signing: dict[int, SigningKey]
    verify: dict[int, VerifyKey]
    current: int


def load_keys(db: Db) -> KeyRing:
    rows = list(db.query("SELECT key_id, private_key FROM signing_keys ORDER BY key_id"))
    signing = {r["key_id"]: SigningKey.from_private_bytes(r["key_id"], r["private_key"]) for r in rows}
    return KeyRing(signing, {k: v.public_key() for k, v in signing.items()}, max(signing))


def code_for(keys: KeyRing, ticket: Mapping[str, Any]) -> str:
    """The full signed code of a ticket (Ed25519 is deterministic, so it is derived, not stored)."""
    return issue_code(keys.signing[ticket["key_id"]], ticket["id"], ticket["itinerary_id"])


def code_check(code: str) -> bytes:
    """What the server keeps of a printed ticket's code (a 128-bit digest of its normalised text).

    An online redeem compares digests instead of signing the code again (a fiftieth of the CPU);
    whoever reads the database cannot turn a digest back into a code.
    """
    return hashlib.blake2b(code.encode("ascii"), digest_size=16).digest()


# --- catalogue --------------------------------------------------------------------------------


def _parse_dt(data: Mapping[str, Any], name: str, errors: FieldErrors, zone: tzinfo) -> datetime | None:
    raw = forms.text(data, name, errors, max_len=40)
    if not raw or name in errors:
        return None
    try:
        value = read_local(datetime.fromisoformat(raw), zone)
        value.astimezone(UTC)  # 0001-01-01 in a zone east of UTC has no UTC time to store
    except NoSuchLocalTime:
        errors.add(name, Msg("This time does not exist here: the clocks skip it (daylight saving time)."))
        return None
    except (ValueError, OverflowError):
        errors.add(name, Msg("Enter a date and time like 2026-11-24 08:00."))
        return None
    return value


def validate_itinerary(data: Mapping[str, Any], zone: tzinfo = UTC) -> dict[str, Any]:
    """An itinerary's fields; times without an offset are the terminal's local time (``zone``)."""
    errors = FieldErrors()
    values: dict[str, Any] = {
        "vessel": forms.text(data, "vessel", errors, max_len=120),
        "voyage": forms.text(data, "voyage", errors, max_len=40),
        "berth": forms.text(data, "berth", errors, max_len=40, required=False),
    }
    times = {name: _parse_dt(data, name, errors, zone) for name in ("eta", "etd", "valid_from", "valid_until")}
    if times["eta"] and times["etd"] and times["etd"] < times["eta"]:
        errors.add("etd", Msg("The departure must be after the arrival."))
    if times["valid_from"] and times["valid_until"] and times["valid_until"] <= times["valid_from"]:
        errors.add("valid_until", Msg("The end of the gate window must be after its start."))
    errors.raise_if_any()
    values.update({k: _stored_minute(v) for k, v in times.items() if v is not None})
    return values


def _stored_minute(moment: datetime) -> str:
    """An itinerary time as stored (UTC ISO text to the minute), so stored ones compare with it as text."""
    return moment.astimezone(UTC).isoformat(timespec="minutes")


def window_over(valid_until: str, now: datetime) -> bool:
    """Whether an itinerary's gate window (``valid_until`` as stored) has closed at ``now``: one test for
    generating tickets, the phone's ticket status and driver share links, so they never disagree."""
    return valid_until <= _stored_minute(now)


def save_itinerary(
    db: Db,
    values: dict[str, Any],
    actor_id: int | None = None,
    itinerary_id: int | None = None,
    *,
    now: datetime,
) -> int:
    seq = next_seq(db)
    clash = scalar(
        db, "SELECT id FROM itineraries WHERE vessel = ? AND voyage = ?", (values["vessel"], values["voyage"])
    )
    if itinerary_id is None and clash:
        itinerary_id = clash
    if itinerary_id:
        if clash and clash != itinerary_id:
            raise ValidationFailed({"voyage": Msg("This vessel already has this voyage.")})
        found = db.execute(
            "UPDATE itineraries SET vessel=?, voyage=?, eta=?, etd=?, valid_from=?, valid_until=?, berth=?, "
            "sync_seq=? WHERE id = ?",
            (
                values["vessel"],
                values["voyage"],
                values["eta"],
                values["etd"],
                values["valid_from"],
                values["valid_until"],
                values["berth"],
                seq,
                itinerary_id,
            ),
        ).rowcount
        if not found:
            raise TicketError("not_found", Msg("Not found."))
    else:
        itinerary_id = db.execute(
            "INSERT INTO itineraries (vessel, voyage, eta, etd, valid_from, valid_until, berth, sync_seq, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                values["vessel"],
                values["voyage"],
                values["eta"],
                values["etd"],
                values["valid_from"],
                values["valid_until"],
                values["berth"],
                seq,
                stored_at(now),
            ),
        ).fetchone()[0]
    audit(db, "itinerary.saved", now=now, user_id=actor_id, detail=f"{values['vessel']} {values['voyage']}")
    return cast(int, itinerary_id)


def parse_itineraries_csv(text: str, zone: tzinfo = UTC) -> list[dict[str, Any]]:
    """Checked rows of ``vessel,voyage,eta,etd,valid_from,valid_until[,berth]``; one bad row rejects the file.

    Times without an offset are the terminal's local time (``zone``)."""
    return validated_rows(
        text,
        ("vessel", "voyage", "eta", "etd", "valid_from", "valid_until"),
        functools.partial(validate_itinerary, zone=zone),
        Msg("The CSV needs the columns vessel, voyage, eta, etd, valid_from, valid_until (and optionally berth)."),
    )


def save_itineraries(db: Db, rows: list[dict[str, Any]], actor_id: int | None = None, *, now: datetime) -> int:
    for values in rows:
        save_itinerary(db, values, actor_id, now=now)
    return len(rows)


def get_itinerary(db: Db, itinerary_id: int) -> dict[str, Any] | None:
    return one(db, "SELECT * FROM itineraries WHERE id = ?", (itinerary_id,))


def validate_service(data: Mapping[str, Any]) -> dict[str, Any]:
    errors = FieldErrors()
    values = {
        "code": forms.text(data, "code", errors, max_len=20).upper(),
        "name_es": forms.text(data, "name_es", errors, max_len=120),
        "name_en": forms.text(data, "name_en", errors, max_len=120),
    }
    if values["code"] and "code" not in errors and not values["code"].replace("-", "").replace("_", "").isalnum():
        errors.add("code", Msg("Letters, digits, dashes and underscores only."))
    errors.raise_if_any()
    return values


def save_service(db: Db, values: dict[str, Any], actor_id: int | None = None, *, now: datetime) -> int:
    existing = scalar(db, "SELECT id FROM services WHERE code = ?", (values["code"],))
    if existing:
        db.execute(
            "UPDATE services SET name_es = ?, name_en = ?, active = 1 WHERE id = ?",
            (values["name_es"], values["name_en"], existing),
        )
        service_id = existing
    else:
        service_id = db.execute(
            "INSERT INTO services (code, name_es, name_en) VALUES (?, ?, ?) RETURNING id",
            (values["code"], values["name_es"], values["name_en"]),
        ).fetchone()[0]
    audit(db, "service.saved", now=now, user_id=actor_id, detail=values["code"])
    return service_id


def parse_services_csv(text: str) -> list[dict[str, Any]]:
    """Checked rows of ``code,name_es,name_en``; one bad row rejects the file."""
    return validated_rows(
        text, ("code", "name_es", "name_en"), validate_service, Msg("The CSV needs the columns code, name_es, name_en.")
    )


def save_services(db: Db, rows: list[dict[str, Any]], actor_id: int | None = None, *, now: datetime) -> int:
    for values in rows:
        save_service(db, values, actor_id, now=now)
    return len(rows)


def list_services(db: Db, active_only: bool = True) -> list[dict[str, Any]]:
    return list(db.query("SELECT * FROM services WHERE ? = 0 OR active = 1 ORDER BY code", (int(active_only),)))


# --- purchases and balance --------------------------------------------------------------------


def validate_purchase(data: Mapping[str, Any]) -> dict[str, Any]:
    errors = FieldErrors()
    values = {
        "company_id": forms.integer(data, "company_id", errors, minimum=1, maximum=2**62),
        "quantity": forms.integer(data, "quantity", errors, minimum=1, maximum=100_000),
        "reference": forms.text(data, "reference", errors, max_len=60),
    }
    errors.raise_if_any()
    return values


def record_purchase(db: Db, values: dict[str, Any], actor_id: int | None = None, *, now: datetime) -> int:
    if not scalar(db, "SELECT 1 FROM companies WHERE id = ? AND in_registry = 1", (values["company_id"],)):
        raise ValidationFailed({"company_id": Msg("Choose a company of the billing registry.")})
    if scalar(
        db,
        "SELECT 1 FROM purchases WHERE company_id = ? AND reference = ?",
        (values["company_id"], values["reference"]),
    ):
        raise ValidationFailed({"reference": Msg("This company already has a purchase with this reference.")})
    purchase_id = db.execute(
        "INSERT INTO purchases (company_id, quantity, reference, recorded_by, recorded_at) "
        "VALUES (?, ?, ?, ?, ?) RETURNING id",
        (values["company_id"], values["quantity"], values["reference"], actor_id, stored_at(now)),
    ).fetchone()[0]
    audit(
        db,
        "purchase.recorded",
        now=now,
        user_id=actor_id,
        company_id=values["company_id"],
        detail=f"{values['quantity']} {values['reference']}",
    )
    return cast(int, purchase_id)


def confirm_purchase(db: Db, purchase_id: int, actor_id: int | None = None, *, now: datetime) -> dict[str, Any]:
    """Payment confirmed at the bank: the purchased quantity joins the company's balance (once)."""
    purchase = one(db, f"SELECT * FROM purchases WHERE id = ?{db.dialect.for_update}", (purchase_id,))
    if purchase is None:
        raise TicketError("not_found", Msg("Not found."))
    if purchase["status"] == "confirmed":
        raise TicketError("already_confirmed", Msg("This purchase is already confirmed."))
    db.execute(
        "UPDATE purchases SET status = 'confirmed', confirmed_by = ?, confirmed_at = ? WHERE id = ?",
        (actor_id, stored_at(now), purchase_id),
    )
    db.execute(
        "INSERT INTO balances (company_id, confirmed) VALUES (?, ?) ON CONFLICT (company_id) "
        "DO UPDATE SET confirmed = balances.confirmed + excluded.confirmed",
        (purchase["company_id"], purchase["quantity"]),
    )
    audit(
        db, "purchase.confirmed", now=now, user_id=actor_id, company_id=purchase["company_id"], detail=str(purchase_id)
    )
    return purchase


@dataclass(frozen=True)
class Balance:
    confirmed: int
    active_tickets: int

    @property
    def available(self) -> int:
        return self.confirmed - self.active_tickets


def balance(db: Db, company_id: int) -> Balance:
    """The company's balance from the ``balances`` counters.

    They could be derived (confirmed purchases minus live tickets), but counting a big customer's
    tickets on every page would not stay fast; every write that changes them runs in the same
    transaction as the change, so they cannot drift.
    """
    row = one(db, "SELECT confirmed, active_tickets FROM balances WHERE company_id = ?", (company_id,))
    return Balance(row["confirmed"], row["active_tickets"]) if row else Balance(0, 0)


# --- generation -------------------------------------------------------------------------------


def validate_generation(data: Mapping[str, Any], service_ids: list[str]) -> dict[str, Any]:
    errors = FieldErrors()
    values: dict[str, Any] = {
        "quantity": forms.integer(data, "quantity", errors, minimum=1, maximum=MAX_GENERATE),
        "itinerary_id": forms.integer(data, "itinerary_id", errors, minimum=1, maximum=2**31),
    }
    values["services"] = forms.id_choices(service_ids, "services", errors, Msg("Choose services from the list."))
    if not values["services"] and "services" not in errors:
        errors.add("services", Msg("Choose at least one service."))
    errors.raise_if_any()
    return values


def generate_tickets(
    db: Db, keys: KeyRing, company_id: int, user_id: int | None, values: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """Turn part of the balance into tickets for one itinerary and its services; returns the transaction."""
    quantity = values["quantity"]
    itinerary = one(db, "SELECT * FROM itineraries WHERE id = ? AND active = 1", (values["itinerary_id"],))
    if itinerary is None or window_over(itinerary["valid_until"], now):
        raise ValidationFailed({"itinerary_id": Msg("Choose an itinerary that is still open.")})
    placeholders = ",".join("?" * len(values["services"]))
    found = scalar(
        db, f"SELECT COUNT(*) FROM services WHERE active = 1 AND id IN ({placeholders})", tuple(values["services"])
    )
    if found != len(values["services"]):
        raise ValidationFailed({"services": Msg("Choose services from the list.")})
    lock_for_update(db, "SELECT company_id FROM balances WHERE company_id = ?", (company_id,))  # one spend at a time
    current = balance(db, company_id)
    if quantity > current.available:
        raise ValidationFailed(
            {"quantity": Msg("You can generate at most %(n)s tickets (your balance).", {"n": current.available})}
        )
    created = stored_at(now)
    generation_id = db.execute(
        "INSERT INTO generations (transaction_no, company_id, itinerary_id, quantity, services, created_by, "
        "created_at) VALUES ('', ?, ?, ?, ?, ?, ?) RETURNING id",
        (company_id, itinerary["id"], quantity, json.dumps(values["services"]), user_id, created),
    ).fetchone()[0]
    transaction_no = f"TX{now.astimezone(UTC):%Y%m%d}-{generation_id:06d}"
    db.execute("UPDATE generations SET transaction_no = ? WHERE id = ?", (transaction_no, generation_id))
    first_seq = next_seq(db, quantity)
    rows = []
    for i in range(quantity):
        rows.append(
            (company_id, generation_id, itinerary["id"], keys.current, _unique_short_code(db), first_seq + i, created)
        )
    db.executemany(
        "INSERT INTO tickets (company_id, generation_id, itinerary_id, key_id, short_code, sync_seq, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    db.execute("UPDATE balances SET active_tickets = active_tickets + ? WHERE company_id = ?", (quantity, company_id))
    audit(
        db, "tickets.generated", now=now, user_id=user_id, company_id=company_id, detail=f"{transaction_no} x{quantity}"
    )
    return {
        "transaction_no": transaction_no,
        "generation_id": generation_id,
        "quantity": quantity,
        "itinerary": itinerary,
    }


def _unique_short_code(db: Db) -> str:
    # 10^20 codes: a clash is astronomically rare, but the UNIQUE index would abort the whole
    # generation, so check and redraw instead.
    while True:
        code = new_short_code()
        if not scalar(db, "SELECT 1 FROM tickets WHERE short_code = ?", (code,)):
            return code


# --- listing ----------------------------------------------------------------------------------


def itinerary_summaries(db: Db, company_id: int) -> list[dict[str, Any]]:
    """Per itinerary with tickets of this company: counts of printed, not printed and used."""
    return list(
        db.query(
            """
        SELECT i.id, i.vessel, i.voyage, i.eta, i.etd, i.valid_from, i.valid_until,
               SUM(CASE WHEN t.deleted_at IS NULL THEN 1 ELSE 0 END) AS total,
               SUM(CASE WHEN t.deleted_at IS NULL AND t.printed_at IS NOT NULL THEN 1 ELSE 0 END) AS printed,
               SUM(CASE WHEN t.used_at IS NOT NULL THEN 1 ELSE 0 END) AS used
        FROM generations g JOIN itineraries i ON i.id = g.itinerary_id
        JOIN tickets t ON t.generation_id = g.id
        WHERE g.company_id = ? GROUP BY i.id ORDER BY i.eta DESC
        """,
            (company_id,),
        )
    )


def generations_for(db: Db, company_id: int, itinerary_id: int) -> list[dict[str, Any]]:
    return list(
        db.query(
            "SELECT * FROM generations WHERE company_id = ? AND itinerary_id = ? ORDER BY id",
            (company_id, itinerary_id),
        )
    )


def service_names(db: Db, ids: list[int], lang: str) -> list[str]:
    if not ids:
        return []
    column = "name_en" if lang == "en" else "name_es"
    placeholders = ",".join("?" * len(ids))
    return [
        r[column]
        for r in db.query(f"SELECT {column} FROM services WHERE id IN ({placeholders}) ORDER BY code", tuple(ids))
    ]


PAGE_SIZE = 50


def tickets_page(
    db: Db, company_id: int, itinerary_id: int, *, status: str = "all", after_id: int = 0, limit: int = PAGE_SIZE
) -> list[dict[str, Any]]:
    """One page of a company's live tickets for an itinerary, keyset-paginated by id (fast at any depth)."""
    conditions = {
        "all": "",
        "printed": " AND printed_at IS NOT NULL",
        "not_printed": " AND printed_at IS NULL",
        "used": " AND used_at IS NOT NULL",
    }[status]
    return list(
        db.query(
            "SELECT id, itinerary_id, generation_id, key_id, short_code, printed_at, print_count, used_at, deleted_at "
            f"FROM tickets WHERE company_id = ? AND itinerary_id = ? AND deleted_at IS NULL{conditions} AND id > ? "
            "ORDER BY id LIMIT ?",
            (company_id, itinerary_id, after_id, limit),
        )
    )


def get_ticket(db: Db, company_id: int, ticket_id: int) -> dict[str, Any] | None:
    """A ticket of this company (None for any other company's: they are indistinguishable from absent)."""
    return one(
        db,
        "SELECT t.*, g.transaction_no, g.services FROM tickets t JOIN generations g ON g.id = t.generation_id "
        "WHERE t.id = ? AND t.company_id = ?",
        (ticket_id, company_id),
    )


def _live_ticket(db: Db, company_id: int, ticket_id: int) -> dict[str, Any]:
    """The ticket a print or delete is about to change, locked first on PostgreSQL.

    Its row is locked before the sync counter (``next_seq``), in the order redeems lock them: a
    delete racing a redeem of the same ticket waits for it and then sees its use, and the two never
    deadlock.
    """
    lock_for_update(db, "SELECT id FROM tickets WHERE id = ? AND company_id = ?", (ticket_id, company_id))
    ticket = get_ticket(db, company_id, ticket_id)
    if ticket is None or ticket["deleted_at"]:
        raise TicketError("not_found", Msg("Not found."))
    if ticket["used_at"]:
        raise TicketError(
            "used", Msg("This ticket was already used at the gate; it can no longer be printed or deleted.")
        )
    return ticket


def print_ticket(
    db: Db,
    company_id: int,
    ticket_id: int,
    user_id: int | None = None,
    keys: KeyRing | None = None,
    *,
    now: datetime,
) -> dict[str, Any]:
    """Mark a ticket printed (again) and return it with its full ``code``; refused once used or deleted."""
    return mark_printed(db, _live_ticket(db, company_id, ticket_id), user_id, keys, now=now)


def mark_printed(
    db: Db, ticket: dict[str, Any], user_id: int | None, keys: KeyRing | None, *, now: datetime
) -> dict[str, Any]:
    """Count one more print of a live ticket (the first one tells the kiosks); returns it with its ``code``.

    ``keys`` is the caller's key ring (the app's); the keys are read from the database only when
    it has none or lacks the ticket's key (rotated by another worker moments ago).
    """
    if keys is None or ticket["key_id"] not in keys.signing:
        keys = load_keys(db)
    code = code_for(keys, ticket)
    first = ticket["printed_at"] is None
    seq = next_seq(db) if first else ticket["sync_seq"]
    printed_now = stored_at(now)
    db.execute(
        "UPDATE tickets SET printed_at = COALESCE(printed_at, ?), print_count = print_count + 1, "
        "sync_seq = ?, code_check = ? WHERE id = ?",
        (printed_now, seq, code_check(code), ticket["id"]),
    )
    if first:
        audit(db, "ticket.printed", now=now, user_id=user_id, company_id=ticket["company_id"], detail=str(ticket["id"]))
    printed_at = ticket["printed_at"] or printed_now
    changed = {"printed_at": printed_at, "print_count": ticket["print_count"] + 1, "sync_seq": seq}
    return {**ticket, **changed, "first_print": first, "code": code}


def delete_ticket(
    db: Db, company_id: int, ticket_id: int, user_id: int | None = None, *, now: datetime
) -> dict[str, Any]:
    """Delete an unused ticket: it returns 1 to the balance and every kiosk learns it is void."""
    ticket = _live_ticket(db, company_id, ticket_id)
    seq = next_seq(db)
    deleted_at = stored_at(now)
    db.execute(
        "UPDATE tickets SET deleted_at = ?, sync_seq = ? WHERE id = ? AND used_at IS NULL", (deleted_at, seq, ticket_id)
    )
    db.execute("UPDATE balances SET active_tickets = active_tickets - 1 WHERE company_id = ?", (company_id,))
    audit(db, "ticket.deleted", now=now, user_id=user_id, company_id=company_id, detail=str(ticket_id))
    return {**ticket, "deleted_at": deleted_at, "sync_seq": seq}
