"""My account: the signed-in person's name, e-mail, phone and language.

A new e-mail takes effect only once its owner opens the link mailed to it (a typo, or someone at an
unlocked screen, must not move the account's password resets to another mailbox).

Every function takes a connection (``server.sql.Connection``) and runs on a DB thread (see ``server.db``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server import forms
from server.accounts.audit import audit
from server.accounts.users import one_time_token, token_record
from server.db import one, scalar
from server.forms import FieldErrors, ValidationFailed
from server.i18n import LANGUAGES, Msg
from server.sql import Connection

Db = Connection

#: How long the link that confirms a new e-mail works.
CONFIRM_EMAIL_HOURS = 24


def my_account(db: Db, user_id: int) -> dict[str, Any] | None:
    return one(db, "SELECT username, full_name, email, phone, language FROM users WHERE id = ?", (user_id,))


def validate_account(data: Mapping[str, Any]) -> dict[str, str]:
    """The editable fields; raises with one message per bad field."""
    errors = FieldErrors()
    values = {
        "full_name": forms.text(data, "full_name", errors, max_len=120),
        "email": forms.email(data, "email", errors),
        "phone": forms.phone(data, "phone", errors),
        "language": str(data.get("language") or ""),
    }
    if values["language"] not in LANGUAGES:
        errors.add("language", Msg("Choose Spanish or English."))
    errors.raise_if_any()
    return values


def update_account(db: Db, user_id: int, values: Mapping[str, str], now: float) -> str | None:
    """Save name, phone and language; a new e-mail gets a confirmation link, whose token is returned."""
    current = scalar(db, "SELECT email FROM users WHERE id = ?", (user_id,))
    token = None
    if values["email"] != current:
        if scalar(db, "SELECT 1 FROM users WHERE email = ? AND id != ?", (values["email"], user_id)):
            raise ValidationFailed({"email": Msg("An account with this e-mail already exists.")})
        token = one_time_token(
            db, "confirm_email", now, hours=CONFIRM_EMAIL_HOURS, user_id=user_id, email=values["email"]
        )
    db.execute(
        "UPDATE users SET full_name = ?, phone = ?, language = ? WHERE id = ?",
        (values["full_name"], values["phone"], values["language"], user_id),
    )
    audit(db, "account.updated", now=now, user_id=user_id, detail="email change asked" if token else "")
    return token


def confirm_email(db: Db, token: str, now: float) -> str | None:
    """Make the link's address the account's e-mail; None when the link is unknown, used, expired, or the
    address was taken meanwhile."""
    record = token_record(db, token, "confirm_email", now)
    if record is None or scalar(db, "SELECT 1 FROM users WHERE email = ?", (record["email"],)):
        return None
    db.execute("UPDATE one_time_tokens SET used_at = ? WHERE token_hash = ?", (now, record["token_hash"]))
    db.execute("UPDATE users SET email = ? WHERE id = ?", (record["email"], record["user_id"]))
    audit(db, "account.email_changed", now=now, user_id=record["user_id"])
    return str(record["email"])
