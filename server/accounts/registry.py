"""The billing registry: the companies (by tax id) that may register, kept by billing clerks.

Every function takes a ``sqlite_utils.Database`` and runs on a DB thread (see ``server.db``);
write functions run inside one transaction, so a raised error leaves nothing behind.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from server import forms
from server.accounts.audit import audit, stored_time
from server.accounts.users import new_row_id
from server.csv_import import validated_rows
from server.db import one, scalar
from server.forms import FieldErrors
from server.i18n import Msg

Db = sqlite_utils.Database


@dataclass
class ImportResult:
    added: int
    updated: int


def _company_fields(data: Mapping[str, Any], errors: FieldErrors) -> dict[str, Any]:
    tax = forms.tax_id(data, "tax_id", errors)
    name = forms.text(data, "name", errors, max_len=200)
    raw_emails = data.get("emails") or ""
    emails = [e.strip().lower() for e in str(raw_emails).replace(";", ",").split(",") if e.strip()]
    if not emails:
        errors.add("emails", forms.REQUIRED)
    elif len(emails) > 10 or any(not forms.EMAIL_RE.match(e) or len(e) > 254 for e in emails):
        errors.add("emails", Msg("Enter up to 10 valid e-mail addresses separated by commas."))
    phone = forms.phone(data, "phone", errors, required=False)
    return {"tax_id": tax, "name": name, "emails": emails, "phone": phone}


def validate_company(data: Mapping[str, Any]) -> dict[str, Any]:
    """The registry fields of a form or CSV row; raises with one message per bad field."""
    errors = FieldErrors()
    fields = _company_fields(data, errors)
    errors.raise_if_any()
    return fields


def save_company(db: Db, data: Mapping[str, Any], *, actor_id: int | None = None, now: float) -> dict[str, Any]:
    """Add a company to the billing registry, or update the one with the same tax id."""
    return _upsert_company(db, validate_company(data), actor_id, now)


def _upsert_company(db: Db, fields: dict[str, Any], actor_id: int | None, now: float) -> dict[str, Any]:
    existing = one(db, "SELECT id, kind FROM companies WHERE tax_id = ?", (fields["tax_id"],))
    emails = json.dumps(fields["emails"])
    if existing:
        db.execute(
            "UPDATE companies SET name = ?, emails = ?, phone = ?, in_registry = 1 WHERE id = ?",
            (fields["name"], emails, fields["phone"], existing["id"]),
        )
        if existing["kind"] == "prospect":
            _make_customer(db, existing["id"])
        company_id = existing["id"]
        event = "company.updated"
    else:
        company_id = new_row_id(
            db.execute(
                "INSERT INTO companies (tax_id, name, emails, phone, kind, in_registry, created_at) "
                "VALUES (?, ?, ?, ?, 'customer', 1, ?)",
                (fields["tax_id"], fields["name"], emails, fields["phone"], stored_time(now)),
            )
        )
        event = "company.added"
    audit(db, event, now=now, user_id=actor_id, company_id=company_id, detail=fields["tax_id"])
    return {"id": company_id, **fields}


def _make_customer(db: Db, company_id: int) -> None:
    """A prospect the billing registry now lists is a customer: its people get the gate-ticket pages."""
    db.execute("UPDATE companies SET kind = 'customer' WHERE id = ?", (company_id,))
    db.execute(
        "UPDATE OR IGNORE profiles SET role = 'customer' WHERE company_id = ? AND role = 'prospect'", (company_id,)
    )
    db.execute("DELETE FROM profiles WHERE company_id = ? AND role = 'prospect'", (company_id,))  # had both


def parse_companies_csv(text: str) -> list[dict[str, Any]]:
    """Checked ``tax_id,name,emails,phone`` rows; any bad row rejects the whole file."""
    return validated_rows(
        text,
        ("tax_id", "name", "emails"),
        validate_company,
        Msg("The CSV needs the columns tax_id, name, emails (and optionally phone)."),
    )


def save_companies(db: Db, rows: list[dict[str, Any]], actor_id: int | None = None, *, now: float) -> ImportResult:
    """Add or update the registry's companies from :func:`parse_companies_csv`'s rows."""
    added = updated = 0
    for fields in rows:
        exists = scalar(db, "SELECT 1 FROM companies WHERE tax_id = ?", (fields["tax_id"],))
        _upsert_company(db, fields, actor_id, now)
        updated += bool(exists)
        added += not exists
    return ImportResult(added, updated)


def list_companies(db: Db, *, search: str = "", limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
    """Companies whose tax id or name contains ``search``, by name."""
    like = f"%{search}%"
    return list(
        db.query(
            "SELECT id, tax_id, name, emails, phone, kind, in_registry FROM companies "
            "WHERE (? = '' OR tax_id LIKE ? OR name LIKE ?) ORDER BY name LIMIT ? OFFSET ?",
            (search, like, like, limit, offset),
        )
    )


def company_emails(db: Db, tax_id: str) -> list[str] | None:
    """The e-mails on file for a company in the registry; None when the tax id is not there."""
    row = one(db, "SELECT emails FROM companies WHERE tax_id = ? AND in_registry = 1", (tax_id.upper(),))
    return json.loads(row["emails"]) if row else None
