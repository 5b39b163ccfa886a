"""A customer administrator's own users: add extra users of the company with a profile, remove them.

A new user gets an active account without a usable password and an e-mailed one-time link to
choose one (the same ``set_password`` link prospect registration uses). Removing takes away the
user's profiles at this company only; an account left without any profile is disabled and signed
out everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlite_utils

from server import forms
from server.accounts.service import _check_unique, audit, invite_user
from server.db import one, scalar
from server.forms import FieldErrors
from server.i18n import Msg

Db = sqlite_utils.Database

#: The profiles a customer administrator may give; staff roles are the terminal's business.
ASSIGNABLE_ROLES = ("customer", "customer_admin")


class CompanyUserError(Exception):
    def __init__(self, code: str, message: Msg) -> None:
        super().__init__(code)
        self.code = code
        self.message = message


def list_users(db: Db, company_id: int) -> list[dict[str, Any]]:
    """The company's users with their profiles at this company."""
    rows = db.query(
        "SELECT u.id, u.username, u.email, u.full_name, u.status, u.created_at, group_concat(p.role, ',') AS roles "
        "FROM users u JOIN profiles p ON p.user_id = u.id WHERE p.company_id = ? GROUP BY u.id ORDER BY u.full_name",
        (company_id,),
    )
    result = []
    for row in rows:
        row["roles"] = sorted(set(row["roles"].split(",")))
        result.append(row)
    return result


def validate_user(data: Mapping[str, Any], roles: list[str]) -> dict[str, Any]:
    errors = FieldErrors()
    values: dict[str, Any] = {
        "full_name": forms.text(data, "full_name", errors, max_len=120),
        "username": forms.username(data, "username", errors),
        "email": forms.email(data, "email", errors),
        "phone": forms.phone(data, "phone", errors, required=False),
    }
    forms.confirmation(data, "email_confirm", values["email"], errors, Msg("The e-mail addresses do not match."))
    chosen = sorted({r for r in roles if r})
    if not chosen:
        errors.add("roles", Msg("Choose at least one profile."))
    elif any(r not in ASSIGNABLE_ROLES for r in chosen):
        errors.add("roles", Msg("Choose profiles from the list."))
    values["roles"] = chosen
    errors.raise_if_any()
    return values


def add_user(
    db: Db, company_id: int, values: Mapping[str, Any], actor_id: int, now: float, language: str
) -> tuple[dict[str, Any], str]:
    """Create the user with the chosen profiles; returns (user, set-password link token)."""
    errors = FieldErrors()
    _check_unique(db, values["username"], values["email"], errors)
    errors.raise_if_any()
    # No password yet: the user sets one through the e-mailed link.
    user_id, token = invite_user(db, company_id, values["roles"], values, "active", language, now)
    audit(
        db,
        "company_user.added",
        user_id=actor_id,
        company_id=company_id,
        detail=f"{values['username']} {','.join(values['roles'])}",
    )
    return {"id": user_id, **values}, token


def remove_user(db: Db, company_id: int, user_id: int, actor_id: int) -> dict[str, Any]:
    """Take the user's profiles at this company away; disable the account if none are left."""
    if user_id == actor_id:
        raise CompanyUserError("own_account", Msg("You cannot remove your own user."))
    user = one(
        db,
        "SELECT u.id, u.username, u.full_name FROM users u WHERE u.id = ? AND EXISTS "
        "(SELECT 1 FROM profiles p WHERE p.user_id = u.id AND p.company_id = ?)",
        (user_id, company_id),
    )
    if user is None:
        raise CompanyUserError("not_found", Msg("Not found."))
    if scalar(
        db,
        "SELECT 1 FROM profiles WHERE user_id = ? AND company_id = ? AND role NOT IN ('customer', 'customer_admin')",
        (user_id, company_id),
    ):
        raise CompanyUserError("staff_user", Msg("This user has a staff profile; ask the administrator."))
    db.execute("DELETE FROM profiles WHERE user_id = ? AND company_id = ?", (user_id, company_id))
    if not scalar(db, "SELECT COUNT(*) FROM profiles WHERE user_id = ?", (user_id,)):
        db.execute("UPDATE users SET status = 'disabled' WHERE id = ?", (user_id,))
        db.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))
    audit(db, "company_user.removed", user_id=actor_id, company_id=company_id, detail=user["username"])
    return user
