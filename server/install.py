"""First-run set-up of a real installation: the operator company, its gate licence and the first admin.

``portgate-server init`` runs it once, on an empty database, before the service starts; everything
else (staff users, customers, itineraries, kiosks) is then done in the portal or the API by people.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from gate_core.clock import utc_iso
from server import forms
from server.accounts.audit import audit
from server.db import scalar
from server.forms import FieldErrors
from server.helpdesk import licences
from server.i18n import Msg
from server.security import hash_password, password_problem

DEFAULT_GATE_MACHINES = 10
DEFAULT_LICENCE_YEARS = 5
#: The gate licence may admit at most this many kiosks (the licences' own limit).
MAX_GATE_MACHINES = licences.MAX_MACHINES


class AlreadySetUp(Exception):
    """The database already holds users or an operator company: set-up runs once."""


def validate_first_run(data: Mapping[str, Any], password_min: int, today: date) -> dict[str, Any]:
    """The set-up's values, checked; errors are keyed by the option's name (``operator_tax_id``…)."""
    errors = FieldErrors()
    values: dict[str, Any] = {
        "operator_name": forms.text(data, "operator_name", errors, max_len=120),
        "operator_tax_id": forms.tax_id(data, "operator_tax_id", errors),
        "operator_email": forms.email(data, "operator_email", errors, required=False),
        "operator_phone": forms.phone(data, "operator_phone", errors, required=False),
        "admin_login": forms.username(data, "admin_login", errors),
        "admin_email": forms.email(data, "admin_email", errors),
        "admin_name": forms.text(data, "admin_name", errors, max_len=120, required=False),
        "gate_machines": forms.integer(data, "gate_machines", errors, minimum=1, maximum=MAX_GATE_MACHINES),
        "licence_until": _future_date(data, "licence_until", errors, today),
    }
    password = data.get("password")
    problem = (
        Msg("A password is required.")
        if not isinstance(password, str) or not password
        else password_problem(password, password_min, username=values["admin_login"], email=values["admin_email"])
    )
    if problem is not None:
        errors.add("password", problem)
    errors.raise_if_any()
    values["password"] = password
    values["admin_name"] = values["admin_name"] or values["admin_login"]
    values["operator_email"] = values["operator_email"] or values["admin_email"]
    return values


def _future_date(data: Mapping[str, Any], name: str, errors: FieldErrors, today: date) -> date:
    raw = forms.text(data, name, errors, max_len=10)
    if name in errors:
        return today
    try:
        until = date.fromisoformat(raw)
    except ValueError:
        errors.add(name, Msg("Enter a date as YYYY-MM-DD."))
        return today
    if until <= today:
        errors.add(name, Msg("Enter a date after today."))
    return until


def default_licence_until(today: date) -> date:
    return today + timedelta(days=365 * DEFAULT_LICENCE_YEARS)


def set_up(db: Any, values: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """Create the operator company, its gate licence serial and the first administrator, in one
    transaction; refuses (:class:`AlreadySetUp`) a database that has users or an operator."""
    users = scalar(db, "SELECT COUNT(*) FROM users") or 0
    operators = scalar(db, "SELECT COUNT(*) FROM companies WHERE kind = 'operator'") or 0
    if users or operators:
        raise AlreadySetUp(
            f"this database is already set up (user accounts: {users}, operator companies: {operators}); "
            "nothing was changed. Add staff users in the portal instead"
        )
    stamp = utc_iso(now, "seconds")
    company_id = db.execute(
        "INSERT INTO companies (tax_id, name, emails, phone, kind, in_registry, created_at) "
        "VALUES (?, ?, ?, ?, 'operator', 1, ?) RETURNING id",
        (
            values["operator_tax_id"],
            values["operator_name"],
            json.dumps([values["operator_email"]]),
            values["operator_phone"],
            stamp,
        ),
    ).fetchone()[0]
    user_id = db.execute(
        "INSERT INTO users (username, email, full_name, phone, password_hash, status, language, created_at) "
        "VALUES (?, ?, ?, '', ?, 'active', 'es', ?) RETURNING id",
        (values["admin_login"], values["admin_email"], values["admin_name"], hash_password(values["password"]), stamp),
    ).fetchone()[0]
    db.execute("INSERT INTO profiles (user_id, company_id, role) VALUES (?, ?, 'admin')", (user_id, company_id))
    serial_id = licences.save_serial(
        db,
        {
            "serial_id": None,
            "company_id": company_id,
            "serial": "",
            "system": licences.GATE_SYSTEM,
            "description": "Gate kiosks",
            "valid_until": values["licence_until"].isoformat(),
            "max_machines": values["gate_machines"],
            "max_open_tickets": 0,
            "suspended": False,
        },
        user_id,
        now,
    )
    serial = scalar(db, "SELECT serial FROM serials WHERE id = ?", (serial_id,))
    audit(db, "installation.set_up", now=now, user_id=user_id, company_id=company_id, detail=values["operator_tax_id"])
    return {"company_id": company_id, "user_id": user_id, "serial_id": serial_id, "serial": serial}
