"""A customer administrator's own users: add extra users of the company with a profile, remove them.

A customer administrator also changes which of the two company profiles a user holds. A new user
gets an active account without a usable password and an e-mailed one-time link to
choose one (the same ``set_password`` link prospect registration uses). Removing takes away the
user's profiles at this company only; an account left without any profile is disabled and signed
out everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.accounts.audit import audit
from server.accounts.users import Refused, check_unique, invite_user, validate_person
from server.db import one, scalar
from server.forms import FieldErrors
from server.i18n import Msg
from server.sql import Connection

Db = Connection

#: The profiles a customer administrator may give; staff roles are the terminal's business.
ASSIGNABLE_ROLES = ("customer", "customer_admin")

NOT_FOUND = Refused("not_found", Msg("Not found."))


def list_users(db: Db, company_id: int) -> list[dict[str, Any]]:
    """The company's users with their profiles at this company."""
    rows = db.query(
        f"SELECT u.id, u.username, u.email, u.full_name, u.status, u.created_at, "
        f"{db.dialect.string_agg('p.role')} AS roles "
        "FROM users u JOIN profiles p ON p.user_id = u.id WHERE p.company_id = ? GROUP BY u.id ORDER BY u.full_name",
        (company_id,),
    )
    result = []
    for row in rows:
        row["roles"] = sorted(set(row["roles"].split(",")))
        result.append(row)
    return result


def role_choices(roles: list[Any], errors: FieldErrors) -> list[str]:
    """The company profiles chosen (at least one, each one a customer administrator may give)."""
    chosen = sorted({r for r in roles if r})
    if not chosen:
        errors.add("roles", Msg("Choose at least one profile."))
    elif any(r not in ASSIGNABLE_ROLES for r in chosen):
        errors.add("roles", Msg("Choose profiles from the list."))
    return chosen


def validate_user(data: Mapping[str, Any], roles: list[str]) -> dict[str, Any]:
    errors = FieldErrors()
    values = validate_person(data, errors)
    values["roles"] = role_choices(roles, errors)
    errors.raise_if_any()
    return values


def validate_roles(roles: list[Any]) -> list[str]:
    errors = FieldErrors()
    chosen = role_choices(roles, errors)
    errors.raise_if_any()
    return chosen


def add_user(
    db: Db, company_id: int, values: Mapping[str, Any], actor_id: int, now: float, language: str
) -> tuple[dict[str, Any], str]:
    """Create the user with the chosen profiles; returns (user, set-password link token)."""
    errors = FieldErrors()
    check_unique(db, values["username"], values["email"], errors)
    errors.raise_if_any()
    # No password yet: the user sets one through the e-mailed link.
    user_id, token = invite_user(db, company_id, values["roles"], values, "active", language, now)
    audit(
        db,
        "company_user.added",
        now=now,
        user_id=actor_id,
        company_id=company_id,
        detail=f"{values['username']} {','.join(values['roles'])}",
    )
    return {"id": user_id, **values}, token


def company_user(db: Db, company_id: int, user_id: int) -> dict[str, Any]:
    """A user of the company who holds no staff profile there; another company's user is not found."""
    user = one(
        db,
        "SELECT u.id, u.username, u.full_name FROM users u WHERE u.id = ? AND EXISTS "
        "(SELECT 1 FROM profiles p WHERE p.user_id = u.id AND p.company_id = ?)",
        (user_id, company_id),
    )
    if user is None:
        raise NOT_FOUND
    if scalar(
        db,
        "SELECT 1 FROM profiles WHERE user_id = ? AND company_id = ? AND role NOT IN ('customer', 'customer_admin')",
        (user_id, company_id),
    ):
        raise Refused("staff_user", Msg("This user has a staff profile; ask the administrator."))
    return user


def set_roles(db: Db, company_id: int, user_id: int, roles: list[str], actor_id: int, now: float) -> dict[str, Any]:
    """The user holds exactly ``roles`` at this company (their profiles elsewhere stay as they are)."""
    user = company_user(db, company_id, user_id)
    if user_id == actor_id and "customer_admin" not in roles:
        raise Refused(
            "own_admin_profile",
            Msg("You cannot take away your own administrator profile: another administrator of the company must."),
        )
    marks = ", ".join("?" for _ in roles)
    # A session acting as a removed profile must choose another (profiles.id ON DELETE SET NULL).
    db.execute(
        f"DELETE FROM profiles WHERE user_id = ? AND company_id = ? AND role NOT IN ({marks})",
        (user_id, company_id, *roles),
    )
    db.executemany(
        "INSERT INTO profiles (user_id, company_id, role) VALUES (?, ?, ?) "
        "ON CONFLICT (user_id, company_id, role) DO NOTHING",
        [(user_id, company_id, role) for role in roles],
    )
    audit(
        db,
        "company_user.profiles",
        now=now,
        user_id=actor_id,
        company_id=company_id,
        detail=f"{user['username']} {','.join(roles)}",
    )
    return {**user, "roles": roles}


def remove_user(db: Db, company_id: int, user_id: int, actor_id: int, now: float) -> dict[str, Any]:
    """Take the user's profiles at this company away; disable the account if none are left."""
    if user_id == actor_id:
        raise Refused("own_account", Msg("You cannot remove your own user."))
    user = company_user(db, company_id, user_id)
    db.execute("DELETE FROM profiles WHERE user_id = ? AND company_id = ?", (user_id, company_id))
    if not scalar(db, "SELECT COUNT(*) FROM profiles WHERE user_id = ?", (user_id,)):
        db.execute("UPDATE users SET status = 'disabled' WHERE id = ?", (user_id,))
        db.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))
    audit(db, "company_user.removed", now=now, user_id=actor_id, company_id=company_id, detail=user["username"])
    return user
