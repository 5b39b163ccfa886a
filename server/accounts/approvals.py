"""Approvals: an administrator accepts or refuses the accounts that await it.

Every function takes a connection (``server.sql.Connection``) and runs on a DB thread (see ``server.db``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server import forms
from server.accounts.audit import audit, stored_time
from server.accounts.users import role_problem
from server.db import one
from server.forms import FieldErrors
from server.i18n import Msg
from server.sql import Connection

Db = Connection


def pending_registrations(db: Db) -> list[dict[str, Any]]:
    """The accounts awaiting approval, oldest first, with their company."""
    return list(
        db.query(
            "SELECT u.id, u.username, u.email, u.full_name, u.phone, u.created_at, c.name AS company_name, "
            f"c.id AS company_id, c.tax_id, c.kind AS company_kind, "
            f"{db.dialect.string_agg('p.role')} AS roles FROM users u "
            "JOIN profiles p ON p.user_id = u.id JOIN companies c ON c.id = p.company_id "
            "WHERE u.status = 'pending' GROUP BY u.id, c.id ORDER BY u.created_at, u.id LIMIT 200"
        )
    )


def validate_decision(data: Mapping[str, Any], profiles: list[Any] | None) -> dict[str, Any]:
    """An approval's or refusal's optional note to the registrant, and the profiles chosen to approve with
    (``None`` keeps the ones registered); each profile is ``{"company_id", "role"}``."""
    errors = FieldErrors()
    note = forms.text(data, "note", errors, max_len=1000, required=False, multiline=True)
    chosen: list[tuple[int, str]] = []
    for entry in profiles or []:
        company_id = forms.parse_id(entry.get("company_id")) if isinstance(entry, Mapping) else None
        role = entry.get("role") if isinstance(entry, Mapping) else None
        if company_id is None or not isinstance(role, str):
            errors.add("profiles", Msg("Each profile needs a company and a role."))
        elif (company_id, role) not in chosen:
            chosen.append((company_id, role))
    if profiles is not None and not chosen:
        errors.add("profiles", Msg("Choose at least one profile."))
    errors.raise_if_any()
    return {"note": note, "profiles": chosen if profiles is not None else None}


def _replace_profiles(db: Db, user_id: int, profiles: list[tuple[int, str]]) -> None:
    """The approved account holds exactly ``profiles``; a company or role that cannot be is a field error."""
    errors = FieldErrors()
    for company_id, role in profiles:
        company = one(db, "SELECT kind FROM companies WHERE id = ?", (company_id,))
        problem = role_problem(company["kind"], role) if company else Msg("No such company.")
        if problem:
            errors.add("profiles", problem)
    errors.raise_if_any()
    db.execute("DELETE FROM profiles WHERE user_id = ?", (user_id,))
    db.executemany(
        "INSERT INTO profiles (user_id, company_id, role) VALUES (?, ?, ?)",
        [(user_id, company_id, role) for company_id, role in profiles],
    )


def decide_registration(
    db: Db,
    admin_id: int,
    user_id: int,
    approve: bool,
    now: float,
    profiles: list[tuple[int, str]] | None = None,
) -> dict[str, Any] | None:
    """Activate (with ``profiles`` when chosen) or reject a pending account (approving a prospect puts its
    company in the registry); None when it is not pending (already decided, or no such account)."""
    # Locked on PostgreSQL: a decision on another node waits, then finds the account decided (its
    # row no longer pending), so two staff deciding at once give one outcome, one mail, one entry.
    user = one(
        db,
        "SELECT id, email, full_name, username, language FROM users WHERE id = ? AND status = 'pending'"
        + db.dialect.for_update,
        (user_id,),
    )
    if user is None:
        return None
    if approve and profiles is not None:
        _replace_profiles(db, user_id, profiles)
    status = "active" if approve else "rejected"
    db.execute(
        "UPDATE users SET status = ?, decided_at = ?, decided_by = ? WHERE id = ?",
        (status, stored_time(now), admin_id, user_id),
    )
    if approve:
        db.execute(
            "UPDATE companies SET in_registry = 1 WHERE kind = 'prospect' AND id IN "
            "(SELECT company_id FROM profiles WHERE user_id = ?)",
            (user_id,),
        )
    audit(db, f"user.{status}", now=now, user_id=user_id, detail=f"by {admin_id}")
    return user
