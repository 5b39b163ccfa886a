"""Signing in: credentials with throttling per account and per address, sessions, profiles, language.

Every function takes a ``sqlite_utils.Database`` and runs on a DB thread (see ``server.db``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlite_utils

from server.accounts.audit import audit
from server.config import SecurityConfig
from server.db import one, scalar
from server.security import new_token, token_hash, verify_password

Db = sqlite_utils.Database

#: How long failures under an unknown name are remembered after the last one (when no lock runs).
UNKNOWN_LOGIN_MEMORY_SECONDS = 86400


@dataclass(frozen=True)
class LoginOutcome:
    status: str  # ok | wrong_credentials | pending | rejected | locked | address_throttled
    user: dict[str, Any] | None = None
    locked_until: float = 0.0


@dataclass(frozen=True)
class LoginLimits:
    """Failures allowed per account and per address before a lock of ``lock_minutes``."""

    max_account: int
    max_address: int
    lock_minutes: int

    @classmethod
    def of(cls, security: SecurityConfig) -> LoginLimits:
        return cls(
            security.login_max_failures_per_account,
            security.login_max_failures_per_address,
            security.login_lock_minutes,
        )


def login_check(db: Db, login: str, password: str, address: str, now: float, limits: LoginLimits) -> LoginOutcome:
    """Verify credentials with throttling per account and per address; records the outcome."""
    window_start = now - limits.lock_minutes * 60
    recent = scalar(db, "SELECT COUNT(*) FROM login_failures WHERE address = ? AND at > ?", (address, window_start))
    if recent >= limits.max_address:
        audit(db, "login.address_throttled", now=now, address=address)
        return LoginOutcome("address_throttled")
    user = one(db, "SELECT * FROM users WHERE lower(username) = lower(?) OR email = lower(?)", (login, login))
    # An unknown name is counted and locked exactly like an account: the answers never tell them apart.
    counter = user or _unknown_login(db, login, now)
    if counter["locked_until"] > now:
        return LoginOutcome("locked", locked_until=counter["locked_until"])
    if not verify_password(user["password_hash"] if user else None, password):
        return _count_failure(db, login, user, counter["failed_logins"] + 1, address, now, limits)
    if user is None:  # verify_password never accepts a missing hash; this tells the type checker
        return LoginOutcome("wrong_credentials")
    if user["status"] in ("pending", "rejected", "disabled"):
        return LoginOutcome("pending" if user["status"] == "pending" else "rejected")
    db.execute("UPDATE users SET failed_logins = 0, locked_until = 0 WHERE id = ?", (user["id"],))
    audit(db, "login.ok", now=now, user_id=user["id"], address=address)
    return LoginOutcome("ok", user=user)


def _count_failure(
    db: Db, login: str, user: dict[str, Any] | None, failures: int, address: str, now: float, limits: LoginLimits
) -> LoginOutcome:
    """Record a wrong password for the address and the account (or unknown name); lock it at the limit."""
    db.execute("INSERT INTO login_failures (address, at) VALUES (?, ?)", (address, now))
    locked_until = now + limits.lock_minutes * 60 if failures >= limits.max_account else 0
    failures = 0 if locked_until else failures
    if user:
        db.execute(
            "UPDATE users SET failed_logins = ?, locked_until = ? WHERE id = ?", (failures, locked_until, user["id"])
        )
        event = "login.locked" if locked_until else "login.failed"
        audit(db, event, now=now, user_id=user["id"], address=address)
    else:
        db.execute(
            "INSERT INTO unknown_login_failures (login, failed_logins, locked_until, last_failure_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (login) DO UPDATE SET failed_logins = excluded.failed_logins, "
            "locked_until = excluded.locked_until, last_failure_at = excluded.last_failure_at",
            (login.lower(), failures, locked_until, now),
        )
    if locked_until:
        return LoginOutcome("locked", locked_until=locked_until)
    return LoginOutcome("wrong_credentials")


def _unknown_login(db: Db, login: str, now: float) -> dict[str, Any]:
    """The failure count and lock of a name that belongs to no account (zero when never seen)."""
    db.execute(
        "DELETE FROM unknown_login_failures WHERE last_failure_at < ? AND locked_until < ?",
        (now - UNKNOWN_LOGIN_MEMORY_SECONDS, now),
    )
    row = one(db, "SELECT failed_logins, locked_until FROM unknown_login_failures WHERE login = ?", (login.lower(),))
    return row or {"failed_logins": 0, "locked_until": 0.0}


def create_session(db: Db, user_id: int, kind: str, hours: int, now: float, language: str | None = None) -> str:
    """A new ``web`` or ``api`` session of ``hours``; returns its token (only the hash is kept)."""
    token = new_token()
    db.execute(
        "INSERT INTO sessions (token_hash, user_id, profile_id, csrf_token, kind, created_at, expires_at) "
        "VALUES (?, ?, NULL, ?, ?, ?, ?)",
        (token_hash(token), user_id, new_token(16), kind, now, now + hours * 3600),
    )
    db.execute("DELETE FROM sessions WHERE expires_at < ?", (now,))
    if language:
        db.execute("UPDATE users SET language = ? WHERE id = ?", (language, user_id))
    # Only the one profile a user has is chosen for them; several mean the user picks.
    profiles = profiles_of(db, user_id)
    if len(profiles) == 1:
        db.execute("UPDATE sessions SET profile_id = ? WHERE token_hash = ?", (profiles[0]["id"], token_hash(token)))
    return token


def end_session(db: Db, session_hash: str) -> None:
    db.execute("DELETE FROM sessions WHERE token_hash = ?", (session_hash,))


def profiles_of(db: Db, user_id: int) -> list[dict[str, Any]]:
    """The profiles (role at a company) a user holds, oldest first."""
    return list(
        db.query(
            "SELECT p.id, p.role, p.company_id, c.name AS company_name, c.tax_id FROM profiles p "
            "JOIN companies c ON c.id = p.company_id WHERE p.user_id = ? ORDER BY p.id",
            (user_id,),
        )
    )


def select_profile(db: Db, session_hash: str, user_id: int, profile_id: int) -> dict[str, Any] | None:
    """Make the session act as one of the user's profiles; None when it is not theirs."""
    profile = one(
        db,
        "SELECT p.id, p.role, c.name AS company_name FROM profiles p JOIN companies c "
        "ON c.id = p.company_id WHERE p.id = ? AND p.user_id = ?",
        (profile_id, user_id),
    )
    if profile:
        db.execute("UPDATE sessions SET profile_id = ? WHERE token_hash = ?", (profile_id, session_hash))
    return profile


def set_language(db: Db, user_id: int, language: str) -> None:
    db.execute("UPDATE users SET language = ? WHERE id = ?", (language, user_id))
