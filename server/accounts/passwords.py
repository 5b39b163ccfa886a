"""Passwords: changed by their owner, or chosen through an e-mailed reset or set-password link.

Every function takes a connection (``server.sql.Connection``) and runs on a DB thread (see ``server.db``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server import forms
from server.accounts.audit import audit
from server.accounts.users import one_time_token
from server.db import one, scalar
from server.forms import FieldErrors
from server.i18n import Msg
from server.security import password_problem
from server.sql import Connection

Db = Connection

#: The e-mailed links that let whoever holds them choose the account's password.
PASSWORD_LINKS = ("reset_password", "set_password")


def password_pair(
    data: Mapping[str, Any], errors: FieldErrors, minimum: int, username: str, email: str, field: str = "password"
) -> None:
    """Check ``field`` and its ``_confirm`` twin: required, strong enough, equal."""
    password = data.get(field) if isinstance(data.get(field), str) else ""
    confirm = data.get(f"{field}_confirm") if isinstance(data.get(f"{field}_confirm"), str) else ""
    if not password:
        errors.add(field, forms.REQUIRED)
    else:
        problem = password_problem(password, minimum, username=username, email=email)
        if problem:
            errors.add(field, problem)
    if not confirm:
        errors.add(f"{field}_confirm", forms.REQUIRED)
    elif password and confirm != password:
        errors.add(f"{field}_confirm", Msg("The passwords do not match."))


def validate_new_password(data: Mapping[str, Any], minimum: int, username: str, email: str) -> str:
    errors = FieldErrors()
    password_pair(data, errors, minimum, username, email, field="new_password")
    errors.raise_if_any()
    return str(data["new_password"])


def password_hash_of(db: Db, user_id: int, lock: str = "") -> str | None:
    """``lock``: ``db.dialect.for_update`` to hold the account's row until COMMIT."""
    return scalar(db, "SELECT password_hash FROM users WHERE id = ?" + lock, (user_id,))


def change_password(db: Db, user_id: int, checked_hash: str, new_hash: str, keep_session: str, now: float) -> bool:
    """The owner's change, once the current password was checked against ``checked_hash`` (beforehand,
    outside the transaction: argon2 is slow); False when the account's hash changed since."""
    if password_hash_of(db, user_id, db.dialect.for_update) != checked_hash:
        return False
    set_password_hash(db, user_id, new_hash, now)
    # Other sessions (a stolen cookie, another device) end with the old password.
    db.execute("DELETE FROM sessions WHERE user_id = ? AND token_hash != ?", (user_id, keep_session))
    audit(db, "password.changed", now=now, user_id=user_id)
    return True


def set_password_hash(db: Db, user_id: int, new_hash: str, now: float) -> None:
    """The one way a password changes (by its owner, a reset link or an administrator).

    Every password link still open dies with the old password: a link read from an old mail, or
    sent to a mailbox that was since taken over, must not undo the change.
    """
    db.execute("UPDATE users SET password_hash = ? WHERE id = ?", (new_hash, user_id))
    _void_password_links(db, user_id, now)


def _void_password_links(db: Db, user_id: int, now: float) -> None:
    db.execute(
        f"UPDATE one_time_tokens SET used_at = ? WHERE user_id = ? AND used_at IS NULL "
        f"AND purpose IN ({', '.join('?' for _ in PASSWORD_LINKS)})",
        (now, user_id, *PASSWORD_LINKS),
    )


def start_password_reset(db: Db, email: str, now: float) -> tuple[dict[str, Any], str] | None:
    """A new reset link for an active account; every earlier one stops working (only the newest mail counts)."""
    user = one(db, "SELECT id, email, full_name, language FROM users WHERE email = ? AND status = 'active'", (email,))
    if user is None:
        return None
    _void_password_links(db, user["id"], now)
    token = one_time_token(db, "reset_password", now, hours=1, user_id=user["id"], email=email)
    audit(db, "password.reset_requested", now=now, user_id=user["id"])
    return user, token


def finish_password_set(db: Db, record: dict[str, Any], new_hash: str, now: float) -> bool:
    """Set the password through an e-mailed link; False when the link was used (or voided) meanwhile.

    The link is claimed by one conditional update inside this write, so of several concurrent
    uses of one link exactly one sets the password.
    """
    claimed = db.execute(
        "UPDATE one_time_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
        (now, record["token_hash"], now),
    ).rowcount
    if claimed != 1:
        return False
    set_password_hash(db, record["user_id"], new_hash, now)
    db.execute("UPDATE users SET failed_logins = 0, locked_until = 0 WHERE id = ?", (record["user_id"],))
    db.execute("DELETE FROM sessions WHERE user_id = ?", (record["user_id"],))
    audit(db, "password.reset", now=now, user_id=record["user_id"])
    return True
