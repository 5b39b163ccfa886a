"""Accounts and their one-time links: what registration, passwords and company users share.

Every function takes a connection (``server.sql.Connection``) and runs on a DB thread (see ``server.db``);
write functions run inside one transaction, so a raised error leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from server import forms
from server.accounts.audit import stored_time
from server.db import one, scalar
from server.forms import FieldErrors
from server.i18n import Msg
from server.security import new_token, token_hash
from server.sql import Connection, Cursor
from server.web import STAFF_ROLES

Db = Connection

ROLE_LABELS = {
    "customer": Msg("Customer"),
    "customer_admin": Msg("Customer administrator"),
    "prospect": Msg("Prospect"),
    "billing_clerk": Msg("Billing clerk"),
    "operations": Msg("Operations"),
    "gate_supervisor": Msg("Gate supervisor"),
    "helpdesk_agent": Msg("Helpdesk agent"),
    "admin": Msg("Administrator"),
}

#: How long an e-mailed "set your password" link works.
SET_PASSWORD_HOURS = 72


#: The account states an administrator sees and filters by.
USER_STATUSES = ("active", "pending", "disabled", "rejected")


class UnknownTaxId(Exception):
    """The tax id is not in the billing registry."""


class Refused(Exception):
    """A change to an account that the rules do not allow; ``code`` is stable, ``message`` says why."""

    def __init__(self, code: str, message: Msg) -> None:
        super().__init__(code)
        self.code = code
        self.message = message


def validate_person(data: Mapping[str, Any], errors: FieldErrors) -> dict[str, Any]:
    """The fields of a new account someone creates for another person (name, login, e-mail twice, phone)."""
    values: dict[str, Any] = {
        "full_name": forms.text(data, "full_name", errors, max_len=120),
        "username": forms.username(data, "username", errors),
        "email": forms.email(data, "email", errors),
        "phone": forms.phone(data, "phone", errors, required=False),
    }
    forms.confirmation(data, "email_confirm", values["email"], errors, Msg("The e-mail addresses do not match."))
    return values


def role_problem(company_kind: str, role: str) -> Msg | None:
    """Why ``role`` cannot be held at a company of ``company_kind``; None when it can."""
    if role not in ROLE_LABELS:
        return Msg("Choose profiles from the list.")
    # Staff profiles belong to the terminal operator's own company, customer profiles to its customers,
    # and a prospect (not yet a customer: no gate tickets) is one only at a prospect company.
    if role in STAFF_ROLES:
        kind, problem = "operator", Msg("Staff profiles are held only at the terminal operator's company.")
    elif role == "prospect":
        kind, problem = "prospect", Msg("The prospect profile is held only at a prospect company.")
    else:
        kind, problem = "customer", Msg("Customer profiles are held only at customer companies.")
    return None if company_kind == kind else problem


def check_unique(db: Db, username: str, email: str, errors: FieldErrors) -> None:
    """Mark the user name or e-mail that another account already has."""
    if scalar(db, "SELECT 1 FROM users WHERE lower(username) = lower(?)", (username,)):
        errors.add("username", Msg("This user name is taken."))
    if scalar(db, "SELECT 1 FROM users WHERE email = ?", (email,)):
        errors.add("email", Msg("An account with this e-mail already exists."))


def create_user(
    db: Db,
    person: Mapping[str, Any],
    company_id: int,
    roles: list[str],
    *,
    password_hash: str,
    status: str,
    language: str,
    now: float,
) -> int:
    """A new account for ``person`` (username, email, full_name, phone) with ``roles`` at the company."""
    user_id = new_row_id(
        db.execute(
            "INSERT INTO users (username, email, full_name, phone, password_hash, status, language, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                person["username"],
                person["email"],
                person["full_name"],
                person["phone"],
                password_hash,
                status,
                language,
                stored_time(now),
            ),
        )
    )
    db.executemany(
        "INSERT INTO profiles (user_id, company_id, role) VALUES (?, ?, ?)", [(user_id, company_id, r) for r in roles]
    )
    return user_id


def new_row_id(cursor: Cursor) -> int:
    """The id of the row an ``INSERT … RETURNING id`` just added."""
    return cast(int, cursor.fetchone()[0])


def invite_user(
    db: Db, company_id: int, roles: list[str], values: Mapping[str, Any], status: str, language: str, now: float
) -> tuple[int, str]:
    """A user with no password yet ('!' matches no hash) and ``roles`` at the company; returns the user id
    and the token of the e-mailed link with which they set one."""
    user_id = create_user(db, values, company_id, roles, password_hash="!", status=status, language=language, now=now)
    token = one_time_token(
        db, "set_password", now, user_id=user_id, company_id=company_id, email=values["email"], hours=SET_PASSWORD_HOURS
    )
    return user_id, token


def one_time_token(
    db: Db,
    purpose: str,
    now: float,
    *,
    hours: float = 24,
    user_id: int | None = None,
    company_id: int | None = None,
    email: str = "",
    phone: str = "",
    code: str = "",
) -> str:
    """A new e-mailed or texted link for ``purpose``, valid ``hours`` from ``now``; only its hash is kept."""
    token = new_token()
    db.execute(
        "INSERT INTO one_time_tokens (token_hash, purpose, user_id, company_id, email, phone, code_hash, "
        "expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            token_hash(token),
            purpose,
            user_id,
            company_id,
            email,
            phone,
            token_hash(code) if code else "",
            now + hours * 3600,
        ),
    )
    return token


def token_record(db: Db, token: str, purpose: str, now: float) -> dict[str, Any] | None:
    """The unused, unexpired link ``token`` for ``purpose``; None for anything else."""
    if not token or len(token) > 100:
        return None
    return one(
        db,
        "SELECT * FROM one_time_tokens WHERE token_hash = ? AND purpose = ? AND used_at IS NULL AND expires_at > ?",
        (token_hash(token), purpose, now),
    )


def user_by_id(db: Db, user_id: int) -> dict[str, Any] | None:
    return one(db, "SELECT id, username, email, full_name, status, language FROM users WHERE id = ?", (user_id,))
