"""Support policies (pólizas): bought per serial, they are what a service ticket is opened against."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import date, datetime
from typing import Any, cast

from gate_core.clock import utc_iso
from server import forms
from server.accounts.audit import audit
from server.db import one, scalar
from server.forms import FieldErrors
from server.helpdesk.licences import _date, days_left, serial_conditions, serial_status
from server.helpdesk.paging import contains
from server.i18n import Msg
from server.sql import Connection
from server.tickets.paging import FIRST_PAGE, PAGE_SIZE, Keyset, Page, keyset_page

Db = Connection

_POLICY_SELECT = """
    SELECT p.id, p.number, p.description, p.registered_on, p.valid_until, p.serial_id, s.serial, s.system,
           s.company_id, c.name AS company_name, s.suspended, s.valid_until AS serial_valid_until,
           s.max_open_tickets,
           (SELECT COUNT(*) FROM policies q WHERE q.serial_id = p.serial_id) AS serial_policy_count
    FROM policies p JOIN serials s ON s.id = p.serial_id JOIN companies c ON c.id = s.company_id
"""


def _decorate(row: dict[str, Any], today: date) -> dict[str, Any]:
    row["days_left"] = days_left(row["valid_until"], today)
    row["expired"] = row["days_left"] < 0
    row["serial_status"] = serial_status(
        {"suspended": row["suspended"], "valid_until": row["serial_valid_until"]}, today
    )
    return row


def policies_page(
    db: Db,
    company_id: int | None,
    today: date,
    *,
    system: str = "",
    search: str = "",
    current_only: bool = False,
    at: Keyset = FIRST_PAGE,
    limit: int = PAGE_SIZE,
) -> Page:
    """The company's policies newest first, filtered by system, a search text and (``current_only``) validity."""
    conditions, params = serial_conditions(company_id, system)
    if search:
        condition, values = contains(("p.number", "p.description", "s.serial", "s.system"), search)
        conditions.append(condition)
        params += values
    if current_only:
        conditions.append("p.valid_until >= ?")
        params.append(today.isoformat())
    page = keyset_page(db, _POLICY_SELECT, conditions, params, at, id_column="p.id", limit=limit)
    return replace(page, rows=[_decorate(row, today) for row in page.rows])


def get_policy(db: Db, company_id: int | None, policy_id: int, today: date) -> dict[str, Any] | None:
    row = one(
        db,
        _POLICY_SELECT + " WHERE p.id = ? AND (CAST(? AS BIGINT) IS NULL OR s.company_id = ?)",
        (policy_id, company_id, company_id),
    )
    return _decorate(row, today) if row else None


def validate_policy(data: Mapping[str, Any], serial_field: str | None = None) -> dict[str, Any]:
    """A policy's fields; its serial is named by ``serial_id``, or by its number in ``serial_field`` (the form's)."""
    errors = FieldErrors()
    values: dict[str, Any] = {
        "number": forms.text(data, "number", errors, max_len=40),
        "description": forms.text(data, "description", errors, max_len=200),
        "registered_on": _date(data, "registered_on", errors),
        "valid_until": _date(data, "valid_until", errors),
    }
    if serial_field and data.get("serial_id") in (None, ""):
        # Serials are stored upper case (validate_serial), so a number typed in lower case still matches.
        values["serial"] = forms.text(data, serial_field, errors, max_len=64).upper()
        values["serial_field"] = serial_field
    else:
        values["serial_id"] = forms.integer(data, "serial_id", errors, minimum=1, maximum=2**62)
    if (
        values["registered_on"]
        and values["valid_until"]
        and not {"registered_on", "valid_until"} & set(errors)
        and values["valid_until"] < values["registered_on"]
    ):
        errors.add("valid_until", Msg("The validity must end after the registration date."))
    errors.raise_if_any()
    return values


def _policy_serial(db: Db, values: Mapping[str, Any], errors: FieldErrors) -> tuple[int | None, int | None]:
    """The id and company of the serial the policy goes on, named by number or id; a field error when none."""
    if "serial" in values:
        row = one(db, "SELECT id, company_id FROM serials WHERE serial = ?", (values["serial"],))
        if row is None:
            errors.add(values["serial_field"], Msg("No serial has this number."))
            return None, None
        return row["id"], row["company_id"]
    company_id = scalar(db, "SELECT company_id FROM serials WHERE id = ?", (values["serial_id"],))
    if company_id is None:
        errors.add("serial_id", Msg("Choose a serial from the list."))
    return values["serial_id"], company_id


def save_policy(db: Db, values: Mapping[str, Any], actor_id: int | None, now: datetime) -> int:
    """Register a policy on a serial (numbers are unique)."""
    errors = FieldErrors()
    serial_id, company_id = _policy_serial(db, values, errors)
    if scalar(db, "SELECT 1 FROM policies WHERE number = ?", (values["number"],)):
        errors.add("number", Msg("A policy with this number already exists."))
    errors.raise_if_any()
    policy_id = db.execute(
        "INSERT INTO policies (serial_id, number, description, registered_on, valid_until, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        (
            serial_id,
            values["number"],
            values["description"],
            values["registered_on"],
            values["valid_until"],
            utc_iso(now, "seconds"),
        ),
    ).fetchone()[0]
    audit(db, "policy.saved", now=now, user_id=actor_id, company_id=company_id, detail=values["number"])
    return cast(int, policy_id)
