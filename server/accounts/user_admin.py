"""User administration: an administrator finds, creates, enables and disables accounts and grants profiles.

Every function takes a connection (``server.sql.Connection``) and runs on a DB thread (see ``server.db``); writes
run inside one transaction and check everything before changing anything, so a refusal writes nothing.
Refusals the rules make are :class:`~server.accounts.users.Refused` with a stable code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from server import forms
from server.accounts.audit import audit
from server.accounts.list_query import PAGE_SIZE, optional_id, page_size, rows_and_cursor
from server.accounts.users import (
    ROLE_LABELS,
    USER_STATUSES,
    Refused,
    check_unique,
    invite_user,
    role_problem,
    validate_person,
)
from server.db import one, scalar
from server.forms import FieldErrors
from server.i18n import Msg
from server.sql import Connection

Db = Connection

NOT_FOUND = Refused("not_found", Msg("Not found."))


@dataclass(frozen=True)
class UserQuery:
    """What the administrator's user list shows: a search, filters, and where the page starts."""

    search: str = ""
    role: str = ""
    company_id: int | None = None
    status: str = ""
    after: int | None = None
    limit: int = PAGE_SIZE


def parse_user_query(params: Mapping[str, Any]) -> UserQuery:
    """The list's query (``q``, ``role``, ``company_id``, ``status``, ``after``, ``limit``), checked."""
    errors = FieldErrors()
    search = forms.text(params, "q", errors, max_len=100, required=False)
    role = forms.text(params, "role", errors, max_len=40, required=False)
    if role and role not in ROLE_LABELS:
        errors.add("role", Msg("Choose profiles from the list."))
    status = forms.text(params, "status", errors, max_len=20, required=False)
    if status and status not in USER_STATUSES:
        errors.add("status", Msg("Choose a status from the list."))
    company_id = optional_id(params, "company_id", errors)
    after = optional_id(params, "after", errors)
    limit = page_size(params, errors)
    errors.raise_if_any()
    return UserQuery(search, role, company_id, status, after, limit)


def list_users(db: Db, query: UserQuery) -> tuple[list[dict[str, Any]], int | None]:
    """One page of users by name (then id), and the cursor of the next page (None on the last).

    The cursor is the last user's id: the next page starts after that user's (name, id), so users
    added meanwhile never shift a page or show up twice.
    """
    where, params = _user_filters(query)
    if query.after is not None:
        last = one(db, "SELECT lower(full_name) AS name, id FROM users WHERE id = ?", (query.after,))
        if last is None:
            return [], None
        # The first term is what makes SQLite start reading the name index at the cursor (migration 30);
        # the row value alone would have it read the index from the top.
        where.append("lower(u.full_name) >= ? AND (lower(u.full_name), u.id) > (?, ?)")
        params += [last["name"], last["name"], last["id"]]
    sql = (
        "SELECT u.id, u.username, u.email, u.full_name, u.status, u.created_at FROM users u"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY lower(u.full_name), u.id LIMIT ?"
    )
    rows, next_after = rows_and_cursor(list(db.query(sql, [*params, query.limit + 1])), query.limit)
    _attach_profiles(db, rows)
    return rows, next_after


def _user_filters(query: UserQuery) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if query.search:
        pattern = "%" + query.search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(
            "(lower(u.full_name) LIKE ? ESCAPE '\\' OR lower(u.username) LIKE ? ESCAPE '\\' "
            "OR lower(u.email) LIKE ? ESCAPE '\\')"
        )
        params += [pattern] * 3
    if query.status:
        where.append("u.status = ?")
        params.append(query.status)
    if query.role or query.company_id is not None:
        where.append(
            "EXISTS (SELECT 1 FROM profiles p WHERE p.user_id = u.id AND (? = '' OR p.role = ?) "
            "AND (CAST(? AS BIGINT) IS NULL OR p.company_id = ?))"
        )
        params += [query.role, query.role, query.company_id, query.company_id]
    return where, params


def _attach_profiles(db: Db, users: list[dict[str, Any]]) -> None:
    """Each user's profiles (id, role, company), in one query for the whole page."""
    by_id = {u["id"]: u for u in users}
    for user in users:
        user["profiles"] = []
    if not by_id:
        return
    marks = ", ".join("?" for _ in by_id)
    for row in db.query(
        "SELECT p.id, p.user_id, p.role, p.company_id, c.name AS company_name, c.tax_id FROM profiles p "
        f"JOIN companies c ON c.id = p.company_id WHERE p.user_id IN ({marks}) ORDER BY p.id",
        list(by_id),
    ):
        by_id[row.pop("user_id")]["profiles"].append(row)


def user_detail(db: Db, user_id: int) -> dict[str, Any] | None:
    """One account with its profiles; None when there is no such account."""
    user = one(
        db,
        "SELECT id, username, email, full_name, phone, status, language, created_at FROM users WHERE id = ?",
        (user_id,),
    )
    if user is not None:
        _attach_profiles(db, [user])
    return user


def company_by_tax_id(db: Db, tax_id: str) -> dict[str, Any] | None:
    return one(db, "SELECT id, name, tax_id, kind FROM companies WHERE tax_id = ?", (tax_id.strip().upper(),))


# --- creating accounts and granting profiles ------------------------------------------------------


def validate_new_user(data: Mapping[str, Any], roles: list[Any]) -> dict[str, Any]:
    """A new account's fields and its first profiles (``roles`` at one company), checked for shape."""
    errors = FieldErrors()
    values = validate_person(data, errors)
    values["company"] = _company_field(data, errors)
    values["roles"] = _role_choices(roles, errors)
    errors.raise_if_any()
    return values


def _company_field(data: Mapping[str, Any], errors: FieldErrors) -> int | str:
    """The company: ``company_id`` (the API) or ``company_tax_id`` (the page, typed: no list has a cap)."""
    if "company_id" in data:
        value = forms.integer(data, "company_id", errors, minimum=1, maximum=forms.MAX_ID)
        return value or 0
    return forms.tax_id(data, "company_tax_id", errors)


def _role_choices(roles: list[Any], errors: FieldErrors) -> list[str]:
    chosen = sorted({r for r in roles if isinstance(r, str) and r})
    if not chosen:
        errors.add("roles", Msg("Choose at least one profile."))
    elif len(chosen) != len([r for r in roles if r]) or any(r not in ROLE_LABELS for r in chosen):
        errors.add("roles", Msg("Choose profiles from the list."))
    return chosen


def _company_for(db: Db, company: int | str, errors: FieldErrors) -> dict[str, Any] | None:
    """The company a form or body named, or a field error on the field it came from."""
    if isinstance(company, int):
        found = one(db, "SELECT id, name, tax_id, kind FROM companies WHERE id = ?", (company,))
        field = "company_id"
    else:
        found = company_by_tax_id(db, company)
        field = "company_tax_id"
    if found is None:
        errors.add(field, Msg("No company has this tax id in the billing registry."))
    return found


def _check_roles(company: dict[str, Any] | None, roles: list[str], errors: FieldErrors) -> None:
    for role in roles:
        problem = role_problem(company["kind"], role) if company else None
        if problem:
            errors.add("roles", problem)


def create_user(
    db: Db, values: Mapping[str, Any], actor_id: int, now: float, language: str
) -> tuple[dict[str, Any], str]:
    """An active account with the chosen profiles and no password yet; returns (user, set-password token)."""
    errors = FieldErrors()
    check_unique(db, values["username"], values["email"], errors)
    company = _company_for(db, values["company"], errors)
    _check_roles(company, values["roles"], errors)
    errors.raise_if_any()
    assert company is not None  # a missing company is a field error above
    user_id, token = invite_user(db, company["id"], values["roles"], values, "active", language, now)
    detail = f"{values['username']} {','.join(values['roles'])} at {company['tax_id']}"
    audit(db, "user.created", now=now, user_id=actor_id, company_id=company["id"], detail=detail)
    user = {"id": user_id, **values, "company_name": company["name"], "company_id": company["id"]}
    return user, token


def validate_grant(data: Mapping[str, Any]) -> dict[str, Any]:
    """A profile to grant: a company and one role."""
    errors = FieldErrors()
    company = _company_field(data, errors)
    role = forms.text(data, "role", errors, max_len=40)
    if role and role not in ROLE_LABELS:
        errors.add("role", Msg("Choose profiles from the list."))
    errors.raise_if_any()
    return {"company": company, "role": role}


def grant_profile(db: Db, user_id: int, values: Mapping[str, Any], actor_id: int, now: float) -> dict[str, Any]:
    """Give the user ``role`` at a company (a user may hold profiles at several companies)."""
    user = one(db, "SELECT id, username FROM users WHERE id = ?", (user_id,))
    if user is None:
        raise NOT_FOUND
    errors = FieldErrors()
    company = _company_for(db, values["company"], errors)
    problem = role_problem(company["kind"], values["role"]) if company else None
    if problem:
        errors.add("role", problem)
    if company and scalar(
        db,
        "SELECT 1 FROM profiles WHERE user_id = ? AND company_id = ? AND role = ?",
        (user_id, company["id"], values["role"]),
    ):
        errors.add("role", Msg("The user already has this profile at this company."))
    errors.raise_if_any()
    assert company is not None
    profile_id = db.execute(
        "INSERT INTO profiles (user_id, company_id, role) VALUES (?, ?, ?) RETURNING id",
        (user_id, company["id"], values["role"]),
    ).fetchone()[0]
    detail = f"{user['username']} {values['role']} at {company['tax_id']}"
    audit(db, "profile.granted", now=now, user_id=actor_id, company_id=company["id"], detail=detail)
    return {"id": profile_id, "role": values["role"], "company_id": company["id"], "company_name": company["name"]}


def profile_of(db: Db, user_id: int, profile_id: int) -> dict[str, Any] | None:
    """One of the user's profiles with its company and the user's name; None when it is not theirs."""
    return one(
        db,
        "SELECT p.id, p.role, p.company_id, c.name AS company_name, u.username, u.full_name FROM profiles p "
        "JOIN companies c ON c.id = p.company_id JOIN users u ON u.id = p.user_id WHERE p.id = ? AND p.user_id = ?",
        (profile_id, user_id),
    )


def revoke_profile(db: Db, user_id: int, profile_id: int, actor_id: int, now: float) -> dict[str, Any]:
    """Take one profile away; sessions acting as it must choose another profile on their next request."""
    profile = profile_of(db, user_id, profile_id)
    if profile is None:
        raise NOT_FOUND
    if user_id == actor_id and profile["role"] == "admin" and _admin_profiles(db, actor_id) == 1:
        raise Refused(
            "own_last_admin",
            Msg("This is your last administrator profile: another administrator must take it away."),
        )
    db.execute("DELETE FROM profiles WHERE id = ?", (profile_id,))
    detail = f"{profile['username']} {profile['role']} at {profile['company_name']}"
    audit(db, "profile.revoked", now=now, user_id=actor_id, company_id=profile["company_id"], detail=detail)
    return profile


def _admin_profiles(db: Db, user_id: int) -> int:
    return int(scalar(db, "SELECT COUNT(*) FROM profiles WHERE user_id = ? AND role = 'admin'", (user_id,)) or 0)


# --- disabling and enabling ----------------------------------------------------------------------


def set_enabled(db: Db, user_id: int, enabled: bool, actor_id: int, now: float) -> dict[str, Any]:
    """Disable an account (every session and API token of it ends now) or enable a disabled one."""
    user = one(db, "SELECT id, username, full_name, status FROM users WHERE id = ?", (user_id,))
    if user is None:
        raise NOT_FOUND
    if not enabled and user_id == actor_id:
        raise Refused("own_account", Msg("You cannot disable your own account: another administrator must do it."))
    wanted_from = "disabled" if enabled else "active"
    if user["status"] != wanted_from:
        raise Refused("wrong_status", _status_refusal(user["status"], enabled))
    db.execute("UPDATE users SET status = ? WHERE id = ?", ("active" if enabled else "disabled", user_id))
    if not enabled:
        # The session check reads the status on every request; deleting the sessions as well means a
        # later enable does not bring back a cookie or token that was taken with the account.
        db.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))
    audit(db, "user.enabled" if enabled else "user.disabled", now=now, user_id=actor_id, detail=user["username"])
    return {**user, "status": "active" if enabled else "disabled"}


def _status_refusal(status: str, enabling: bool) -> Msg:
    if status == "pending":
        return Msg("This account is awaiting approval: approve or reject it under Registrations.")
    if enabling:
        return Msg("This account is not disabled.")
    return Msg("This account is already disabled.") if status == "disabled" else Msg("This account is not active.")
