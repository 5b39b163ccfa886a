"""The billing registry: the companies (by tax id) that may register, kept by billing clerks.

Every function takes a connection (``server.sql.Connection``) and runs on a DB thread (see ``server.db``);
write functions run inside one transaction, so a raised error leaves nothing behind.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from server import forms
from server.accounts.audit import audit, stored_time
from server.accounts.list_query import PAGE_SIZE, optional_id, page_size, rows_and_cursor
from server.accounts.users import new_row_id
from server.csv_import import validated_rows
from server.db import one, scalar
from server.forms import FieldErrors, ValidationFailed
from server.i18n import Msg
from server.sql import Connection

Db = Connection


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
    """Add a company to the billing registry, or update the one with the same tax id (``added`` says which)."""
    return _upsert_company(db, validate_company(data), actor_id, now)


def _upsert_company(db: Db, fields: dict[str, Any], actor_id: int | None, now: float) -> dict[str, Any]:
    existing = one(db, "SELECT id, kind FROM companies WHERE tax_id = ?", (fields["tax_id"],))
    if existing:
        _update_company(db, existing, fields)
        company_id = existing["id"]
        event = "company.updated"
    else:
        company_id = new_row_id(
            db.execute(
                "INSERT INTO companies (tax_id, name, emails, phone, kind, in_registry, created_at) "
                "VALUES (?, ?, ?, ?, 'customer', 1, ?) RETURNING id",
                (fields["tax_id"], fields["name"], json.dumps(fields["emails"]), fields["phone"], stored_time(now)),
            )
        )
        event = "company.added"
    audit(db, event, now=now, user_id=actor_id, company_id=company_id, detail=fields["tax_id"])
    return {"id": company_id, "added": not existing, **fields}


def _update_company(db: Db, existing: Mapping[str, Any], fields: Mapping[str, Any]) -> None:
    """Write the registry's fields over a company's; a prospect the registry now lists becomes a customer."""
    db.execute(
        "UPDATE companies SET tax_id = ?, name = ?, emails = ?, phone = ?, in_registry = 1 WHERE id = ?",
        (fields["tax_id"], fields["name"], json.dumps(fields["emails"]), fields["phone"], existing["id"]),
    )
    if existing["kind"] == "prospect":
        _make_customer(db, existing["id"])


def edit_company(
    db: Db, company_id: int, data: Mapping[str, Any], *, actor_id: int | None = None, now: float
) -> dict[str, Any] | None:
    """Change a company's registry fields, its tax id included; None when there is no such company.

    Raises (writing nothing) when a field is bad or another company already has the new tax id.
    """
    fields = validate_company(data)
    existing = one(db, "SELECT id, kind FROM companies WHERE id = ?", (company_id,))
    if existing is None:
        return None
    if scalar(db, "SELECT 1 FROM companies WHERE tax_id = ? AND id != ?", (fields["tax_id"], company_id)):
        raise ValidationFailed({"tax_id": Msg("Another company in the registry has this tax id.")})
    _update_company(db, existing, fields)
    audit(db, "company.updated", now=now, user_id=actor_id, company_id=company_id, detail=fields["tax_id"])
    return get_company(db, company_id)


def _make_customer(db: Db, company_id: int) -> None:
    """A prospect the billing registry now lists is a customer: its people get the gate-ticket pages."""
    db.execute("UPDATE companies SET kind = 'customer' WHERE id = ?", (company_id,))
    db.execute(
        "UPDATE profiles SET role = 'customer' WHERE company_id = ? AND role = 'prospect' AND NOT EXISTS "
        "(SELECT 1 FROM profiles c WHERE c.user_id = profiles.user_id AND c.company_id = profiles.company_id "
        "AND c.role = 'customer')",
        (company_id,),
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
        if _upsert_company(db, fields, actor_id, now)["added"]:
            added += 1
        else:
            updated += 1
    return ImportResult(added, updated)


_COLUMNS = "SELECT id, tax_id, name, emails, phone, kind, in_registry FROM companies"


@dataclass(frozen=True)
class RegistryQuery:
    """What a page of the registry shows: a search, and the company after which the page starts."""

    search: str = ""
    after: int | None = None
    limit: int = PAGE_SIZE


def parse_registry_query(params: Mapping[str, Any]) -> RegistryQuery:
    """The list's query (``q``, ``after``, ``limit``), checked; raises with one message per bad field."""
    errors = FieldErrors()
    search = forms.text(params, "q", errors, max_len=100, required=False)
    after = optional_id(params, "after", errors)
    limit = page_size(params, errors)
    errors.raise_if_any()
    return RegistryQuery(search, after, limit)


def companies_page(db: Db, query: RegistryQuery) -> tuple[list[dict[str, Any]], int | None]:
    """One page of companies by name (then id), and the cursor of the next page (None on the last).

    ``search`` matches the start of the name or of the tax id. The cursor is the last company's id:
    the next page starts after that company's (name, id), so companies added meanwhile never shift a
    page or show twice, and every page is a range of the name index, however deep.
    """
    where: list[str] = []
    params: list[Any] = []
    if query.search:
        # Imported here: the tickets package imports this area's services as it loads.
        from server.tickets.paging import starts_with

        pattern = starts_with(query.search)
        where.append("(name LIKE ? ESCAPE '\\' OR tax_id LIKE ? ESCAPE '\\')")
        params += [pattern, pattern]
    if query.after is not None:
        last = one(db, "SELECT name, id FROM companies WHERE id = ?", (query.after,))
        if last is None:
            return [], None
        # The collation on the right-hand side is what lets SQLite read the name index from there.
        where.append(f"({db.dialect.nocase_key('name')}, id) > ({db.dialect.nocase('?')}, ?)")
        params += [last["name"], last["id"]]
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    sql = f"{_COLUMNS}{clause} ORDER BY {db.dialect.nocase('name')}, id LIMIT ?"
    return rows_and_cursor([_company_row(r) for r in db.query(sql, [*params, query.limit + 1])], query.limit)


def list_companies(db: Db, *, search: str = "", limit: int = PAGE_SIZE) -> list[dict[str, Any]]:
    """The first ``limit`` companies by name whose name or tax id starts with ``search``."""
    return companies_page(db, RegistryQuery(search=search, limit=limit))[0]


def get_company(db: Db, company_id: int) -> dict[str, Any] | None:
    row = one(db, f"{_COLUMNS} WHERE id = ?", (company_id,))
    return _company_row(row) if row else None


def _company_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A company as the pages and the API show it: its e-mails a list, whether it is in the registry a bool."""
    return {**row, "emails": json.loads(row["emails"] or "[]"), "in_registry": bool(row["in_registry"])}


def company_emails(db: Db, tax_id: str) -> list[str] | None:
    """The e-mails on file for a company in the registry; None when the tax id is not there."""
    row = one(db, "SELECT emails FROM companies WHERE tax_id = ? AND in_registry = 1", (tax_id.upper(),))
    return json.loads(row["emails"]) if row else None
