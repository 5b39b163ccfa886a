"""Signing in: credentials with throttling per account and per address, sessions, profiles, language.

Every function takes a connection (``server.sql.Connection``) and runs on a DB thread (see ``server.db``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from server.accounts.audit import audit
from server.config import SecurityConfig
from server.db import one, scalar
from server.forms import TAX_ID_RE, mask_email
from server.security import new_token, token_hash, verify_password
from server.sql import Connection

Db = Connection

#: How long failures under an unknown name are remembered after the last one (when no lock runs).
UNKNOWN_LOGIN_MEMORY_SECONDS = 86400
#: Each account of a tax id costs a password check (argon2, deliberately slow): past this many, the
#: tax id is refused and the person signs in with their user name or e-mail instead.
MAX_ACCOUNTS_PER_TAX_ID = 10
#: How long the choice among the accounts that share a tax id and a password stays open.
LOGIN_CHOICE_SECONDS = 300


@dataclass(frozen=True)
class LoginOutcome:
    status: str  # ok | wrong_credentials | pending | rejected | locked | address_throttled | choose | too_many_accounts
    user: dict[str, Any] | None = None
    locked_until: float = 0.0
    #: ``choose``: the token of the choice and the masked identities to choose among, in its order.
    choice_token: str = ""
    choices: list[str] = field(default_factory=list)
    #: ``ok``: the session opened, in the transaction that decided the sign-in.
    session_token: str = ""


@dataclass(frozen=True)
class NewSession:
    """The session a proven sign-in opens: ``web`` or ``api``, for ``hours``; ``language`` becomes the user's."""

    kind: str
    hours: int
    language: str | None = None


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


class StaleCheck(Exception):
    """A password hash changed between its check and the write deciding on it: check again."""


#: The typed password against each hash a sign-in decides on (None: a name no account has).
Verified = Mapping[str | None, bool]


@dataclass(frozen=True)
class _Attempt:
    """What a sign-in is decided on: read before any password is checked, and read again (locked) to decide."""

    refusal: LoginOutcome | None = None
    user: dict[str, Any] | None = None
    #: A sign-in by tax id: the company's accounts, oldest first.
    accounts: list[dict[str, Any]] = field(default_factory=list)
    #: Failures and lock of the account, or of the unknown name or tax id.
    counter: Mapping[str, Any] = field(default_factory=dict)


def _attempt(db: Db, login: str, address: str, now: float, limits: LoginLimits, lock: str = "") -> _Attempt:
    """The refusal decided before any password check, or the accounts the password is checked against.

    ``lock`` (``db.dialect.for_update`` when deciding) locks the accounts read until COMMIT, so a
    password change or a deactivation on another node waits for the sign-in, or the sign-in for it; and
    the decisions for one address take turns (``db.dialect.key_lock``).
    """
    if _address_over_limit(db, address, now, limits):
        return _Attempt(LoginOutcome("address_throttled"))
    if lock and db.dialect.key_lock:
        # The address's failures are counted, then one is added: sign-ins from one address decide in turn
        # (on PostgreSQL; SQLite's writes take turns anyway), or concurrent guesses on other nodes would all
        # count the same failures and pass the limit. Counted again once in turn: a write transaction
        # reads committed rows statement by statement (READ COMMITTED), so it sees the failures added
        # by the decisions before it. (An address already over its limit was refused without waiting.)
        db.execute(db.dialect.key_lock, (f"sign-in address {address}",))
        if _address_over_limit(db, address, now, limits):
            return _Attempt(LoginOutcome("address_throttled"))
    user = one(db, "SELECT * FROM users WHERE lower(username) = lower(?) OR email = lower(?)" + lock, (login, login))
    accounts = _accounts_of_tax_id(db, login, lock) if user is None else []
    # An unknown name is counted and locked exactly like an account: the answers never tell them apart.
    counter = user or _unknown_login(db, login, now, lock)
    if counter["locked_until"] > now:
        return _Attempt(LoginOutcome("locked", locked_until=counter["locked_until"]))
    if len(accounts) > MAX_ACCOUNTS_PER_TAX_ID:
        return _Attempt(LoginOutcome("too_many_accounts"))
    return _Attempt(None, user, accounts, counter)


def _address_over_limit(db: Db, address: str, now: float, limits: LoginLimits) -> bool:
    window_start = now - limits.lock_minutes * 60
    recent = scalar(db, "SELECT COUNT(*) FROM login_failures WHERE address = ? AND at > ?", (address, window_start))
    return recent >= limits.max_address


def hashes_to_check(db: Db, login: str, address: str, now: float, limits: LoginLimits) -> list[str | None]:
    """(A read.) The password hashes a sign-in will decide on; none when it is refused before any check."""
    attempt = _attempt(db, login, address, now, limits)
    if attempt.refusal:
        return []
    if attempt.accounts:
        return [u["password_hash"] for u in attempt.accounts if u["locked_until"] <= now]
    return [attempt.user["password_hash"] if attempt.user else None]


def check_passwords(hashes: list[str | None], password: str) -> dict[str | None, bool]:
    """``password`` against each hash: argon2, slow on purpose, so on a thread and outside any transaction.

    A missing hash (a name no account has) is checked against a dummy one, which takes as long.
    """
    return {password_hash: verify_password(password_hash, password) for password_hash in hashes}


def login_check(
    db: Db, login: str, verified: Verified, address: str, now: float, limits: LoginLimits, session: NewSession
) -> LoginOutcome:
    """Decide a sign-in (a user name, an e-mail or the company's tax id) on the password checks made
    beforehand, with throttling per account and per address; records the outcome and, when proven,
    opens ``session``. Raises :class:`StaleCheck` when a hash it decides on was not checked (changed since)."""
    attempt = _attempt(db, login, address, now, limits, lock=db.dialect.for_update)
    if attempt.refusal:
        if attempt.refusal.status == "address_throttled":
            audit(db, "login.address_throttled", now=now, address=address)
        return attempt.refusal

    def matches(password_hash: str | None) -> bool:
        if password_hash not in verified:
            raise StaleCheck
        return verified[password_hash]

    if attempt.accounts:
        return _tax_id_login(db, login, attempt, matches, address, now, limits, session)
    user = attempt.user
    if not matches(user["password_hash"] if user else None):
        return _count_failure(db, login, user, attempt.counter["failed_logins"] + 1, address, now, limits)
    if user is None:  # a missing hash never matches; this tells the type checker
        return LoginOutcome("wrong_credentials")
    return _proven(db, user, address, now, session)


def _proven(db: Db, user: dict[str, Any], address: str, now: float, session: NewSession) -> LoginOutcome:
    """The outcome for an account whose password was proven: signed in (a new session), or why not."""
    if user["status"] in ("pending", "rejected", "disabled"):
        return LoginOutcome("pending" if user["status"] == "pending" else "rejected")
    db.execute("UPDATE users SET failed_logins = 0, locked_until = 0 WHERE id = ?", (user["id"],))
    audit(db, "login.ok", now=now, user_id=user["id"], address=address)
    token = create_session(db, user["id"], session.kind, session.hours, now, session.language)
    return LoginOutcome("ok", user=user, session_token=token)


def _accounts_of_tax_id(db: Db, login: str, lock: str = "") -> list[dict[str, Any]]:
    """The accounts with a profile at the company whose tax id (RUC/RFC) is ``login``, oldest first."""
    if not TAX_ID_RE.match(login):
        return []
    return list(
        db.query(
            "SELECT * FROM users WHERE id IN (SELECT p.user_id FROM profiles p JOIN companies c "
            "ON c.id = p.company_id WHERE c.tax_id = ?) ORDER BY id LIMIT ?" + lock,
            (login.upper(), MAX_ACCOUNTS_PER_TAX_ID + 1),
        )
    )


def _tax_id_login(
    db: Db,
    login: str,
    attempt: _Attempt,
    matches: Callable[[str | None], bool],
    address: str,
    now: float,
    limits: LoginLimits,
    session: NewSession,
) -> LoginOutcome:
    """Sign in by tax id: the password picks the account among the company's.

    Failures count against the tax id (as against an unknown name), so guessing across a company's
    accounts is throttled as one. Nothing about the accounts is told before a password matched.
    """
    matched = [u for u in attempt.accounts if u["locked_until"] <= now and matches(u["password_hash"])]
    if not matched:
        return _count_failure(db, login, None, attempt.counter["failed_logins"] + 1, address, now, limits)
    active = [u for u in matched if u["status"] == "active"]
    if len(active) <= 1:
        return _proven(db, (active or matched)[0], address, now, session)
    token = new_token()
    db.execute(
        "INSERT INTO login_choices (token_hash, user_ids, expires_at) VALUES (?, ?, ?)",
        (token_hash(token), json.dumps([u["id"] for u in active]), now + LOGIN_CHOICE_SECONDS),
    )
    db.execute("DELETE FROM login_choices WHERE expires_at < ?", (now,))
    return LoginOutcome("choose", choice_token=token, choices=[_masked_identity(u) for u in active])


def _masked_identity(user: dict[str, Any]) -> str:
    """Enough of an account for its owner to recognise it, not for anyone else to read it."""
    return f"{user['username'][:2]}{'*' * max(1, len(user['username']) - 2)} · {mask_email(user['email'])}"


def choose_login(
    db: Db, token: str, choice: int | None, typed: str, address: str, now: float, session: NewSession
) -> LoginOutcome:
    """Finish a sign-in by tax id: account number ``choice`` of the open choice, or the one whose user
    name or e-mail is ``typed``. The choice is used up either way; None-like outcomes say it expired."""
    row = one(
        db, "SELECT user_ids FROM login_choices WHERE token_hash = ? AND expires_at > ?", (token_hash(token), now)
    )
    if row is None or len(token) > 100:
        return LoginOutcome("choice_expired")
    ids: list[int] = json.loads(row["user_ids"])
    typed = typed.strip().lower()
    if choice is not None and 0 <= choice < len(ids):
        chosen = ids[choice]
    else:
        picked = [u["id"] for u in _users(db, ids) if typed and typed in (u["username"].lower(), u["email"])]
        if not picked:
            return LoginOutcome("not_among_choices")
        chosen = picked[0]
    db.execute("DELETE FROM login_choices WHERE token_hash = ?", (token_hash(token),))
    user = one(db, "SELECT * FROM users WHERE id = ?" + db.dialect.for_update, (chosen,))
    if user is None:  # deleted meanwhile
        return LoginOutcome("choice_expired")
    return _proven(db, user, address, now, session)


def _users(db: Db, ids: list[int]) -> list[dict[str, Any]]:
    return list(db.query(f"SELECT id, username, email FROM users WHERE id IN ({', '.join('?' * len(ids))})", ids))


def _count_failure(
    db: Db, login: str, user: dict[str, Any] | None, failures: int, address: str, now: float, limits: LoginLimits
) -> LoginOutcome:
    """Record a wrong password for the address and the account (or unknown name); lock it at the limit.

    ``failures`` counts this one for an account, whose row the decision holds locked; an unknown
    name (or a tax id) has no row to lock before its first failure, so its count is taken from the
    counter's own atomic increment instead.
    """
    db.execute("INSERT INTO login_failures (address, at) VALUES (?, ?)", (address, now))
    if user is None:
        failures = _count_unknown_failure(db, login, now)
    locked_until = now + limits.lock_minutes * 60 if failures >= limits.max_account else 0
    failures = 0 if locked_until else failures
    if user:
        db.execute(
            "UPDATE users SET failed_logins = ?, locked_until = ? WHERE id = ?", (failures, locked_until, user["id"])
        )
        event = "login.locked" if locked_until else "login.failed"
        audit(db, event, now=now, user_id=user["id"], address=address)
    elif locked_until:
        db.execute(
            "UPDATE unknown_login_failures SET failed_logins = 0, locked_until = ? WHERE login = ?",
            (locked_until, login.lower()),
        )
    if locked_until:
        return LoginOutcome("locked", locked_until=locked_until)
    return LoginOutcome("wrong_credentials")


def _count_unknown_failure(db: Db, login: str, now: float) -> int:
    """One more failure for a name no account has (or a tax id): the count after it.

    One statement, so concurrent failures (several nodes, several writer threads) each count:
    PostgreSQL's upsert waits for another transaction's row and adds to what it committed. Forgotten names
    go first, so an old count is not added to (reads already ignore them).
    """
    _forget_unknown_logins(db, now)
    return db.execute(
        "INSERT INTO unknown_login_failures (login, failed_logins, locked_until, last_failure_at) "
        "VALUES (?, 1, 0, ?) ON CONFLICT (login) DO UPDATE SET "
        "failed_logins = unknown_login_failures.failed_logins + 1, last_failure_at = excluded.last_failure_at "
        "RETURNING failed_logins",
        (login.lower(), now),
    ).fetchone()[0]


def _unknown_login(db: Db, login: str, now: float, lock: str = "") -> Mapping[str, Any]:
    """The failure count and lock of a name that belongs to no account (zero when never seen or forgotten).

    ``lock``: its row is locked until COMMIT, as an account's is, so a guess waits for the one that locks
    the name and then sees the lock (its first failures have no row to lock; the upsert counts those)."""
    row = one(
        db,
        "SELECT failed_logins, locked_until FROM unknown_login_failures WHERE login = ? "
        "AND (last_failure_at >= ? OR locked_until >= ?)" + lock,
        (login.lower(), now - UNKNOWN_LOGIN_MEMORY_SECONDS, now),
    )
    return row or {"failed_logins": 0, "locked_until": 0.0}


def _forget_unknown_logins(db: Db, now: float) -> None:
    """Names no account has are remembered a day after their last failure, unless still locked."""
    db.execute(
        "DELETE FROM unknown_login_failures WHERE last_failure_at < ? AND locked_until < ?",
        (now - UNKNOWN_LOGIN_MEMORY_SECONDS, now),
    )


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
