"""Licence serials and the machines activated on them.

Every customer-facing function takes ``company_id`` and filters by it, so another company's serial
or machine is simply "not found"; ``company_id=None`` is the administrator's unrestricted view and
only admin handlers pass it. Write functions run in one transaction on the writer thread, which is
what makes "one more than the maximum is refused" hold under concurrent activations.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, cast

from gate_core.clock import utc_iso
from server import forms
from server.accounts.audit import audit
from server.db import lock_for_update, one, scalar
from server.forms import FieldErrors
from server.helpdesk.paging import contains
from server.i18n import Msg
from server.sql import Connection
from server.tickets.paging import FIRST_PAGE, PAGE_SIZE, Keyset, Page, keyset_page

Db = Connection

FINGERPRINT_RE = re.compile(r"^[A-Za-z0-9:._/+=-]{4,128}$")
SERIAL_RE = re.compile(r"^[A-Z0-9][A-Z0-9-]{5,63}$")
MAX_MACHINES = 10_000
MAX_OPEN_TICKETS = 1_000


class LicenceError(Exception):
    """A refused licence action with a stable code (``machine_limit``, ``serial_expired``…)."""

    def __init__(self, code: str, message: Msg) -> None:
        super().__init__(code)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class DeactivationQuota:
    """At most ``count`` deactivations per serial within ``days`` days."""

    count: int
    days: int


def days_left(valid_until: str, today: date) -> int:
    return (date.fromisoformat(valid_until) - today).days


def serial_status(row: Mapping[str, Any], today: date) -> str:
    """``suspended`` (by the vendor), ``expired`` (past its validity) or ``valid``."""
    if row["suspended"]:
        return "suspended"
    return "expired" if days_left(row["valid_until"], today) < 0 else "valid"


def _decorate(row: dict[str, Any], today: date) -> dict[str, Any]:
    row["days_left"] = days_left(row["valid_until"], today)
    row["status"] = serial_status(row, today)
    row["available"] = max(0, row["max_machines"] - row["active_machines"])
    return row


_SERIAL_SELECT = """
    SELECT s.id, s.company_id, c.name AS company_name, s.serial, s.system, s.description, s.valid_until,
           s.suspended, s.max_machines, s.max_open_tickets, s.created_at,
           (SELECT COUNT(*) FROM machines m WHERE m.serial_id = s.id) AS total_machines,
           (SELECT COUNT(*) FROM machines m WHERE m.serial_id = s.id AND m.active = 1) AS active_machines,
           (SELECT COUNT(*) FROM policies p WHERE p.serial_id = s.id) AS policy_count
    FROM serials s JOIN companies c ON c.id = s.company_id
"""


def serial_conditions(company_id: int | None, system: str) -> tuple[list[str], list[Any]]:
    """Conditions on serials ``s``: the company's (any for ``None``), of ``system`` (any when blank)."""
    conditions: list[str] = []
    params: list[Any] = []
    if company_id is not None:
        conditions.append("s.company_id = ?")
        params.append(company_id)
    if system:
        conditions.append("s.system = ?")
        params.append(system)
    return conditions, params


def serials_page(
    db: Db,
    company_id: int | None,
    today: date,
    *,
    system: str = "",
    search: str = "",
    at: Keyset = FIRST_PAGE,
    limit: int = PAGE_SIZE,
) -> Page:
    """The serials of a company (all companies for ``None``), newest first, filtered by system and a search text."""
    conditions, params = serial_conditions(company_id, system)
    if search:
        condition, values = contains(("s.serial", "s.system", "s.description", "c.name"), search)
        conditions.append(condition)
        params += values
    page = keyset_page(db, _SERIAL_SELECT, conditions, params, at, id_column="s.id", limit=limit)
    return replace(page, rows=[_decorate(row, today) for row in page.rows])


def systems_of(db: Db, company_id: int | None) -> list[str]:
    """The systems the company holds serials of, for the filter."""
    return [
        row[0]
        for row in db.execute(
            "SELECT DISTINCT system FROM serials WHERE (CAST(? AS BIGINT) IS NULL OR company_id = ?) ORDER BY system",
            (company_id, company_id),
        ).fetchall()
    ]


def get_serial(db: Db, company_id: int | None, serial_id: int, today: date) -> dict[str, Any] | None:
    row = one(
        db,
        _SERIAL_SELECT + " WHERE s.id = ? AND (CAST(? AS BIGINT) IS NULL OR s.company_id = ?)",
        (serial_id, company_id, company_id),
    )
    return _decorate(row, today) if row else None


# A kiosk's liveness is kept on the kiosk (every call refreshes it); an ordinary machine's on itself.
_MACHINE_COLUMNS = (
    "m.id, m.serial_id, m.name, m.fingerprint, m.active, m.activated_at, m.deactivated_at, "
    "COALESCE(k.last_seen_at, m.last_seen_at) AS last_seen_at, m.kiosk_id"
)


def list_machines(db: Db, serial_id: int, *, active: bool | None = None) -> list[dict[str, Any]]:
    """Machines of a serial the caller has already been allowed to see (``get_serial`` first)."""
    return list(
        db.query(
            f"SELECT {_MACHINE_COLUMNS} FROM machines m LEFT JOIN kiosks k ON k.id = m.kiosk_id "
            "WHERE m.serial_id = ? AND (CAST(? AS BIGINT) IS NULL OR m.active = ?) "
            "ORDER BY m.active DESC, m.activated_at, m.id",
            (serial_id, None if active is None else int(active), None if active is None else int(active)),
        )
    )


def get_machine(db: Db, company_id: int | None, serial_id: int, machine_id: int) -> dict[str, Any] | None:
    return one(
        db,
        f"SELECT {_MACHINE_COLUMNS}, s.serial, s.system, s.company_id FROM machines m "
        "JOIN serials s ON s.id = m.serial_id LEFT JOIN kiosks k ON k.id = m.kiosk_id "
        "WHERE m.id = ? AND m.serial_id = ? AND (CAST(? AS BIGINT) IS NULL OR s.company_id = ?)",
        (machine_id, serial_id, company_id, company_id),
    )


# --- activation and deactivation ------------------------------------------------------------------


def validate_machine(data: Mapping[str, Any]) -> dict[str, Any]:
    errors = FieldErrors()
    values = {
        "name": forms.text(data, "name", errors, max_len=80),
        "fingerprint": forms.text(data, "fingerprint", errors, max_len=128),
    }
    if values["fingerprint"] and "fingerprint" not in errors and not FINGERPRINT_RE.match(values["fingerprint"]):
        errors.add("fingerprint", Msg("4 to 128 letters, digits or : . _ / + = -"))
    errors.raise_if_any()
    return values


def check_serial_usable(serial: Mapping[str, Any], today: date) -> None:
    """Refuse new activations on a suspended or expired serial, saying why."""
    status = serial_status(serial, today)
    if status == "suspended":
        raise LicenceError(
            "serial_suspended",
            Msg("The serial %(serial)s is suspended; contact support.", {"serial": serial["serial"]}),
        )
    if status == "expired":
        raise LicenceError(
            "serial_expired",
            Msg(
                "The serial %(serial)s expired on %(date)s; renew it to activate machines.",
                {"serial": serial["serial"], "date": serial["valid_until"]},
            ),
        )


def _serial_for_update(db: Db, company_id: int | None, serial_id: int) -> dict[str, Any]:
    serial = one(
        db,
        "SELECT id, company_id, serial, system, valid_until, suspended, max_machines FROM serials "
        f"WHERE id = ? AND (CAST(? AS BIGINT) IS NULL OR company_id = ?){db.dialect.for_update}",
        (serial_id, company_id, company_id),
    )
    if serial is None:
        raise LicenceError("not_found", Msg("Not found."))
    return serial


def _check_free_slot(db: Db, serial: Mapping[str, Any]) -> None:
    active = scalar(db, "SELECT COUNT(*) FROM machines WHERE serial_id = ? AND active = 1", (serial["id"],))
    if active >= serial["max_machines"]:
        raise LicenceError(
            "machine_limit",
            Msg(
                "The serial %(serial)s already has its %(n)s machines active; deactivate one to free a slot.",
                {"serial": serial["serial"], "n": serial["max_machines"]},
            ),
        )


def activate_machine(
    db: Db,
    company_id: int | None,
    serial_id: int,
    values: Mapping[str, Any],
    actor_id: int | None,
    now: datetime,
) -> dict[str, Any]:
    """Activate a machine (fingerprint) on a serial, or reactivate it; counts against the maximum."""
    serial = _serial_for_update(db, company_id, serial_id)
    check_serial_usable(serial, now.date())
    existing = one(
        db,
        "SELECT id, active FROM machines WHERE serial_id = ? AND fingerprint = ? AND kiosk_id IS NULL",
        (serial_id, values["fingerprint"]),
    )
    if existing and existing["active"]:
        raise LicenceError("already_active", Msg("A machine with this fingerprint is already active on this serial."))
    _check_free_slot(db, serial)
    if existing:
        db.execute(
            "UPDATE machines SET active = 1, name = ?, activated_at = ?, deactivated_at = NULL, last_seen_at = ?, "
            "activated_by = ? WHERE id = ?",
            (values["name"], utc_iso(now, "seconds"), utc_iso(now, "seconds"), actor_id, existing["id"]),
        )
        machine_id = existing["id"]
    else:
        machine_id = db.execute(
            "INSERT INTO machines (serial_id, name, fingerprint, active, activated_at, last_seen_at, activated_by) "
            "VALUES (?, ?, ?, 1, ?, ?, ?) RETURNING id",
            (
                serial_id,
                values["name"],
                values["fingerprint"],
                utc_iso(now, "seconds"),
                utc_iso(now, "seconds"),
                actor_id,
            ),
        ).fetchone()[0]
    audit(
        db,
        "machine.activated",
        now=now,
        user_id=actor_id,
        company_id=serial["company_id"],
        detail=f"{serial['serial']} {values['fingerprint']}",
    )
    return get_machine(db, None, serial_id, machine_id)  # type: ignore[return-value]


def reactivate_machine(
    db: Db, company_id: int | None, serial_id: int, machine_id: int, actor_id: int | None, now: datetime
) -> dict[str, Any]:
    machine = get_machine(db, company_id, serial_id, machine_id)
    if machine is None:
        raise LicenceError("not_found", Msg("Not found."))
    if machine["kiosk_id"]:
        # A kiosk's token is gone for good once revoked; it comes back by enrolling again.
        raise LicenceError("kiosk_machine", Msg("A gate kiosk is reactivated by enrolling it again with a new code."))
    return activate_machine(
        db, company_id, serial_id, {"name": machine["name"], "fingerprint": machine["fingerprint"]}, actor_id, now
    )


def deactivations_in_window(db: Db, serial_id: int, now: datetime, days: int) -> list[str]:
    return [
        row[0]
        for row in db.execute(
            "SELECT at FROM machine_deactivations WHERE serial_id = ? AND at > ? ORDER BY at",
            (serial_id, utc_iso(now - timedelta(days=days), "seconds")),
        ).fetchall()
    ]


def deactivate_machine(
    db: Db,
    company_id: int | None,
    serial_id: int,
    machine_id: int,
    actor_id: int | None,
    now: datetime,
    quota: DeactivationQuota,
) -> dict[str, Any]:
    """Deactivate a machine (its slot frees at once), within the serial's deactivation quota."""
    # The serial's recent deactivations decide this one: concurrent ones (PostgreSQL) wait and then count it.
    lock_for_update(db, "SELECT id FROM serials WHERE id = ?", (serial_id,))
    machine = get_machine(db, company_id, serial_id, machine_id)
    if machine is None:
        raise LicenceError("not_found", Msg("Not found."))
    if not machine["active"]:
        raise LicenceError("already_inactive", Msg("This machine is already inactive."))
    recent = deactivations_in_window(db, serial_id, now, quota.days)
    if len(recent) >= quota.count:
        next_possible = datetime.fromisoformat(recent[len(recent) - quota.count]) + timedelta(days=quota.days)
        raise LicenceError(
            "deactivation_quota",
            Msg(
                "This serial has used its %(n)s deactivations of the last %(days)s days; "
                "the next one is possible on %(date)s.",
                {"n": quota.count, "days": quota.days, "date": next_possible.date().isoformat()},
            ),
        )
    db.execute("UPDATE machines SET active = 0, deactivated_at = ? WHERE id = ?", (utc_iso(now, "seconds"), machine_id))
    db.execute(
        "INSERT INTO machine_deactivations (serial_id, machine_id, at, by_user_id) VALUES (?, ?, ?, ?)",
        (serial_id, machine_id, utc_iso(now, "seconds"), actor_id),
    )
    audit(
        db,
        "machine.deactivated",
        now=now,
        user_id=actor_id,
        company_id=machine["company_id"],
        detail=f"{machine['serial']} {machine['fingerprint']}",
    )
    return {**machine, "active": 0, "deactivated_at": utc_iso(now, "seconds")}


# --- gate kiosks are machines on the operator's serial ------------------------------------------

#: The system whose serial the terminal's gate kiosks activate on.
GATE_SYSTEM = "Portgate Gate"


def gate_serial(db: Db, today: date) -> dict[str, Any] | None:
    """The operator's serial for the gate kiosks: a valid one first, the longest-lasting first."""
    rows = [
        _decorate(row, today)
        for row in db.query(
            _SERIAL_SELECT + " WHERE s.system = ? AND c.kind = 'operator'",
            (GATE_SYSTEM,),
        )
    ]
    rows.sort(key=lambda r: (r["status"] != "valid", -r["days_left"], r["id"]))
    return rows[0] if rows else None


def activate_kiosk_machine(db: Db, kiosk_id: int, name: str, fingerprint: str, now: datetime) -> dict[str, Any]:
    """Enrolling a kiosk activates it as a machine on the operator's serial (inside the enrolment's
    transaction), or refuses: no serial, expired or suspended serial, or no free slot."""
    serial = gate_serial(db, now.date())
    if serial is None:
        raise LicenceError(
            "no_gate_licence",
            Msg(
                "The terminal holds no licence serial for %(system)s; an administrator must register one "
                "before kiosks can enrol.",
                {"system": GATE_SYSTEM},
            ),
        )
    check_serial_usable(serial, now.date())
    _check_free_slot(db, serial)
    machine_id = db.execute(
        "INSERT INTO machines (serial_id, name, fingerprint, active, activated_at, last_seen_at, kiosk_id) "
        "VALUES (?, ?, ?, 1, ?, ?, ?) RETURNING id",
        (serial["id"], name, fingerprint or "-", utc_iso(now, "seconds"), utc_iso(now, "seconds"), kiosk_id),
    ).fetchone()[0]
    audit(db, "machine.activated", now=now, company_id=serial["company_id"], detail=f"{serial['serial']} kiosk {name}")
    return get_machine(db, None, serial["id"], cast(int, machine_id))  # type: ignore[return-value]


def release_kiosk_machine(db: Db, kiosk_id: int, actor_id: int | None, now: datetime) -> None:
    """A kiosk revoked at the gate frees its machine slot (no quota: cutting off a kiosk is never refused)."""
    machine = one(db, "SELECT id, serial_id FROM machines WHERE kiosk_id = ? AND active = 1", (kiosk_id,))
    if machine is None:
        return
    db.execute(
        "UPDATE machines SET active = 0, deactivated_at = ? WHERE id = ?", (utc_iso(now, "seconds"), machine["id"])
    )
    db.execute(
        "INSERT INTO machine_deactivations (serial_id, machine_id, at, by_user_id) VALUES (?, ?, ?, ?)",
        (machine["serial_id"], machine["id"], utc_iso(now, "seconds"), actor_id),
    )


# --- CSV --------------------------------------------------------------------------------------

CSV_COLUMNS = ("serial", "system", "name", "fingerprint", "status", "activated_at", "last_seen_at", "deactivated_at")


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # A cell starting with = + - @ is a formula to a spreadsheet; the quote keeps it plain text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def machines_csv(serial: Mapping[str, Any], machines: list[dict[str, Any]]) -> str:
    """The machine list as CSV (header + one row per machine, quoted where needed)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for m in machines:
        writer.writerow(
            [
                _cell(v)
                for v in (
                    serial["serial"],
                    serial["system"],
                    m["name"],
                    m["fingerprint"],
                    "active" if m["active"] else "inactive",
                    m["activated_at"],
                    m["last_seen_at"],
                    m["deactivated_at"],
                )
            ]
        )
    return buffer.getvalue()


# --- administration -----------------------------------------------------------------------------


def _date(data: Mapping[str, Any], name: str, errors: FieldErrors) -> str:
    value = forms.text(data, name, errors, max_len=10)
    if value and name not in errors:
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            errors.add(name, Msg("Enter a date as YYYY-MM-DD."))
    return value


def validate_serial(data: Mapping[str, Any], tax_id_field: str | None = None) -> dict[str, Any]:
    """A serial's fields; its company is named by ``company_id``, or by tax id in ``tax_id_field`` (the form's)."""
    errors = FieldErrors()
    values: dict[str, Any] = {
        "serial_id": forms.integer(data, "serial_id", errors, minimum=1, maximum=2**62, required=False),
        "serial": forms.text(data, "serial", errors, max_len=64, required=False).upper(),
        "system": forms.text(data, "system", errors, max_len=60),
        "description": forms.text(data, "description", errors, max_len=200),
        "valid_until": _date(data, "valid_until", errors),
        "max_machines": forms.integer(data, "max_machines", errors, minimum=0, maximum=MAX_MACHINES),
        "max_open_tickets": forms.integer(data, "max_open_tickets", errors, minimum=0, maximum=MAX_OPEN_TICKETS),
        "suspended": str(data.get("suspended", "")).lower() in ("1", "on", "true", "yes")
        or data.get("suspended") is True,
    }
    if tax_id_field and data.get("company_id") in (None, ""):
        values["tax_id"] = forms.text(data, tax_id_field, errors, max_len=20).upper()
        values["tax_id_field"] = tax_id_field
    else:
        values["company_id"] = forms.integer(data, "company_id", errors, minimum=1, maximum=2**62)
    if values["serial"] and "serial" not in errors and not SERIAL_RE.match(values["serial"]):
        errors.add("serial", Msg("6 to 64 letters, digits and dashes."))
    errors.raise_if_any()
    return values


def _serial_company(db: Db, values: Mapping[str, Any], errors: FieldErrors) -> int | None:
    """The id of the company the serial goes to, named by tax id or id; a field error when there is none."""
    if "tax_id" in values:
        company_id = scalar(db, "SELECT id FROM companies WHERE tax_id = ?", (values["tax_id"],))
        if company_id is None:
            errors.add(values["tax_id_field"], Msg("No company has this tax id."))
        return company_id
    if not scalar(db, "SELECT 1 FROM companies WHERE id = ?", (values["company_id"],)):
        errors.add("company_id", Msg("Choose a company from the list."))
    return values["company_id"]


def save_serial(db: Db, values: Mapping[str, Any], actor_id: int | None, now: datetime) -> int:
    """Create a serial (a generated one when left blank) or update the one with ``serial_id``."""
    errors = FieldErrors()
    company_id = _serial_company(db, values, errors)
    # Left blank: a new serial gets a generated one; an existing one keeps its own.
    kept = (
        scalar(db, "SELECT serial FROM serials WHERE id = ?", (values["serial_id"],))
        if values.get("serial_id")
        else None
    )
    serial = values["serial"] or kept or str(uuid.uuid4()).upper()
    clash = scalar(db, "SELECT id FROM serials WHERE serial = ?", (serial,))
    if clash and clash != values.get("serial_id"):
        errors.add("serial", Msg("This serial already exists."))
    if values.get("serial_id") and not scalar(db, "SELECT 1 FROM serials WHERE id = ?", (values["serial_id"],)):
        errors.add("serial_id", Msg("Not found."))
    errors.raise_if_any()
    params = (
        company_id,
        serial,
        values["system"],
        values["description"],
        values["valid_until"],
        int(bool(values["suspended"])),
        values["max_machines"],
        values["max_open_tickets"],
        utc_iso(now, "seconds"),
    )
    if values.get("serial_id"):
        db.execute(
            "UPDATE serials SET company_id = ?, serial = ?, system = ?, description = ?, valid_until = ?, "
            "suspended = ?, max_machines = ?, max_open_tickets = ?, updated_at = ? WHERE id = ?",
            (*params, values["serial_id"]),
        )
        serial_id = values["serial_id"]
    else:
        serial_id = db.execute(
            "INSERT INTO serials (company_id, serial, system, description, valid_until, suspended, max_machines, "
            "max_open_tickets, updated_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (*params, utc_iso(now, "seconds")),
        ).fetchone()[0]
    audit(db, "serial.saved", now=now, user_id=actor_id, company_id=company_id, detail=serial)
    return serial_id
