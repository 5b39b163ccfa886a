"""Accounts: billing registry, registration, approval, login throttling, sessions, profiles, passwords.

Every function takes a ``sqlite_utils.Database`` and runs on a DB thread (see ``server.db``);
write functions run inside one transaction, so a raised error leaves nothing behind.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from server import forms
from server.csv_import import validated_rows
from server.db import one, scalar
from server.forms import FieldErrors, ValidationFailed
from server.i18n import Msg
from server.security import (
    new_token,
    password_problem,
    token_hash,
    verify_password,
)

Db = sqlite_utils.Database

ROLE_LABELS = {
    "customer": Msg("Customer"),
    "customer_admin": Msg("Customer administrator"),
    "billing_clerk": Msg("Billing clerk"),
    "operations": Msg("Operations"),
    "gate_supervisor": Msg("Gate supervisor"),
    "helpdesk_agent": Msg("Helpdesk agent"),
    "admin": Msg("Administrator"),
}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def audit(
    db: Db,
    event: str,
    *,
    user_id: int | None = None,
    company_id: int | None = None,
    detail: str = "",
    address: str = "",
) -> None:
    db.execute(
        "INSERT INTO audit_log (at, user_id, company_id, event, detail, address) VALUES (?, ?, ?, ?, ?, ?)",
        (now_iso(), user_id, company_id, event, detail[:500], address[:100]),
    )


# --- billing registry -------------------------------------------------------------------------


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


def save_company(db: Db, data: Mapping[str, Any], *, actor_id: int | None = None) -> dict[str, Any]:
    """Add a company to the billing registry, or update the one with the same tax id."""
    errors = FieldErrors()
    fields = _company_fields(data, errors)
    errors.raise_if_any()
    return _upsert_company(db, fields, actor_id)


def _upsert_company(db: Db, fields: dict[str, Any], actor_id: int | None) -> dict[str, Any]:
    existing = one(db, "SELECT id FROM companies WHERE tax_id = ?", (fields["tax_id"],))
    emails = json.dumps(fields["emails"])
    if existing:
        db.execute(
            "UPDATE companies SET name = ?, emails = ?, phone = ?, in_registry = 1 WHERE id = ?",
            (fields["name"], emails, fields["phone"], existing["id"]),
        )
        company_id = existing["id"]
        audit(db, "company.updated", user_id=actor_id, company_id=company_id, detail=fields["tax_id"])
    else:
        company_id = db.execute(
            "INSERT INTO companies (tax_id, name, emails, phone, kind, in_registry, created_at) "
            "VALUES (?, ?, ?, ?, 'customer', 1, ?)",
            (fields["tax_id"], fields["name"], emails, fields["phone"], now_iso()),
        ).lastrowid
        audit(db, "company.added", user_id=actor_id, company_id=company_id, detail=fields["tax_id"])
    return {"id": company_id, **fields}


@dataclass
class ImportResult:
    added: int
    updated: int


def parse_companies_csv(text: str) -> list[dict[str, Any]]:
    """Checked ``tax_id,name,emails,phone`` rows; any bad row rejects the whole file."""

    def validate_row(row: dict[str, Any]) -> dict[str, Any]:
        errors = FieldErrors()
        fields = _company_fields(row, errors)
        errors.raise_if_any()
        return fields

    return validated_rows(
        text,
        ("tax_id", "name", "emails"),
        validate_row,
        Msg("The CSV needs the columns tax_id, name, emails (and optionally phone)."),
    )


def save_companies(db: Db, rows: list[dict[str, Any]], actor_id: int | None = None) -> ImportResult:
    """Add or update the registry's companies from :func:`parse_companies_csv`'s rows."""
    added = updated = 0
    for fields in rows:
        exists = scalar(db, "SELECT 1 FROM companies WHERE tax_id = ?", (fields["tax_id"],))
        _upsert_company(db, fields, actor_id)
        updated += bool(exists)
        added += not exists
    return ImportResult(added, updated)


def list_companies(db: Db, *, search: str = "", limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
    like = f"%{search}%"
    return list(
        db.query(
            "SELECT id, tax_id, name, emails, phone, kind, in_registry FROM companies "
            "WHERE (? = '' OR tax_id LIKE ? OR name LIKE ?) ORDER BY name LIMIT ? OFFSET ?",
            (search, like, like, limit, offset),
        )
    )


def company_emails(db: Db, tax_id: str) -> list[str] | None:
    row = one(db, "SELECT emails FROM companies WHERE tax_id = ? AND in_registry = 1", (tax_id.upper(),))
    return json.loads(row["emails"]) if row else None


# --- registration -----------------------------------------------------------------------------


def validate_registration(data: Mapping[str, Any], password_min: int) -> dict[str, Any]:
    """Check every field of the self-registration form; raises with one message per bad field."""
    errors = FieldErrors()
    values = {
        "full_name": forms.text(data, "full_name", errors, max_len=120),
        "username": forms.username(data, "username", errors),
        "email": forms.email(data, "email", errors),
        "tax_id": forms.tax_id(data, "tax_id", errors),
        "phone": forms.phone(data, "phone", errors),
    }
    forms.confirmation(data, "email_confirm", values["email"], errors, Msg("The e-mail addresses do not match."))
    password = data.get("password") if isinstance(data.get("password"), str) else ""
    if not password:
        errors.add("password", forms.REQUIRED)
    else:
        problem = password_problem(password, password_min, username=values["username"], email=values["email"])
        if problem:
            errors.add("password", problem)
    confirm = data.get("password_confirm") if isinstance(data.get("password_confirm"), str) else ""
    if not confirm:
        errors.add("password_confirm", forms.REQUIRED)
    elif password and confirm != password:
        errors.add("password_confirm", Msg("The passwords do not match."))
    errors.raise_if_any()
    values["password"] = password
    return values


class UnknownTaxId(Exception):
    """The tax id is not in the billing registry."""


def _check_unique(db: Db, username: str, email: str, errors: FieldErrors) -> None:
    if scalar(db, "SELECT 1 FROM users WHERE lower(username) = lower(?)", (username,)):
        errors.add("username", Msg("This user name is taken."))
    if scalar(db, "SELECT 1 FROM users WHERE email = ?", (email,)):
        errors.add("email", Msg("An account with this e-mail already exists."))


def _insert_user(
    db: Db, *, username: str, email: str, full_name: str, phone: str, password_hash: str, status: str, language: str
) -> int:
    return db.execute(
        "INSERT INTO users (username, email, full_name, phone, password_hash, status, language, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (username, email, full_name, phone, password_hash, status, language, now_iso()),
    ).lastrowid


def register_user(
    db: Db, values: dict[str, Any], password_hash: str, language: str, address: str = ""
) -> dict[str, Any]:
    """Create a pending account with a customer profile for the registered company."""
    company = one(db, "SELECT id, name FROM companies WHERE tax_id = ? AND in_registry = 1", (values["tax_id"],))
    if company is None:
        raise UnknownTaxId(values["tax_id"])
    errors = FieldErrors()
    _check_unique(db, values["username"], values["email"], errors)
    errors.raise_if_any()
    user_id = _insert_user(
        db,
        username=values["username"],
        email=values["email"],
        full_name=values["full_name"],
        phone=values["phone"],
        password_hash=password_hash,
        status="pending",
        language=language,
    )
    db.execute("INSERT INTO profiles (user_id, company_id, role) VALUES (?, ?, 'customer')", (user_id, company["id"]))
    audit(db, "user.registered", user_id=user_id, company_id=company["id"], address=address)
    return {"id": user_id, "company_name": company["name"], **{k: v for k, v in values.items() if k != "password"}}


def validate_prospect(data: Mapping[str, Any]) -> dict[str, Any]:
    errors = FieldErrors()
    values = {
        "company_name": forms.text(data, "company_name", errors, max_len=200),
        "tax_id": forms.tax_id(data, "tax_id", errors),
        "contact": forms.text(data, "contact", errors, max_len=120),
        "email": forms.email(data, "email", errors),
        "phone": forms.phone(data, "phone", errors),
    }
    forms.confirmation(data, "email_confirm", values["email"], errors, Msg("The e-mail addresses do not match."))
    forms.confirmation(data, "phone_confirm", values["phone"], errors, Msg("The phone numbers do not match."))
    errors.raise_if_any()
    return values


def register_prospect(db: Db, values: dict[str, Any], language: str, now: float) -> tuple[dict[str, Any], str]:
    """A not-yet-customer: a prospect company and a pending account; returns a set-password link token."""
    errors = FieldErrors()
    if scalar(db, "SELECT 1 FROM companies WHERE tax_id = ?", (values["tax_id"],)):
        errors.add("tax_id", Msg("This tax id is already registered; use the customer registration."))
    if scalar(db, "SELECT 1 FROM users WHERE email = ?", (values["email"],)):
        errors.add("email", Msg("An account with this e-mail already exists."))
    errors.raise_if_any()
    company_id = db.execute(
        "INSERT INTO companies (tax_id, name, emails, phone, kind, in_registry, created_at) "
        "VALUES (?, ?, ?, ?, 'prospect', 0, ?)",
        (values["tax_id"], values["company_name"], json.dumps([values["email"]]), values["phone"], now_iso()),
    ).lastrowid
    contact = {**values, "username": values["email"], "full_name": values["contact"]}
    user_id, token = invite_user(db, company_id, ["customer"], contact, "pending", language, now)
    audit(db, "prospect.registered", user_id=user_id, company_id=company_id)
    return {"id": user_id, "username": values["email"], **values}, token


#: How long an e-mailed "set your password" link works.
SET_PASSWORD_HOURS = 72


def invite_user(
    db: Db, company_id: int, roles: list[str], values: Mapping[str, Any], status: str, language: str, now: float
) -> tuple[int, str]:
    """A user with no password yet ('!' matches no hash) and ``roles`` at the company; returns the user id
    and the token of the e-mailed link with which they set one."""
    user_id = _insert_user(
        db,
        username=values["username"],
        email=values["email"],
        full_name=values["full_name"],
        phone=values["phone"],
        password_hash="!",
        status=status,
        language=language,
    )
    db.conn.executemany(
        "INSERT INTO profiles (user_id, company_id, role) VALUES (?, ?, ?)", [(user_id, company_id, r) for r in roles]
    )
    token = _one_time_token(
        db, "set_password", now, user_id=user_id, company_id=company_id, email=values["email"], hours=SET_PASSWORD_HOURS
    )
    return user_id, token


def _one_time_token(
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
    if not token or len(token) > 100:
        return None
    return one(
        db,
        "SELECT * FROM one_time_tokens WHERE token_hash = ? AND purpose = ? AND used_at IS NULL AND expires_at > ?",
        (token_hash(token), purpose, now),
    )


def masked_emails(db: Db, tax_id: str) -> list[str] | None:
    """The e-mails on file for an existing customer, masked, in a stable order; None if unknown."""
    emails = company_emails(db, tax_id)
    return None if emails is None else [forms.mask_email(e) for e in emails]


def start_existing_registration(db: Db, tax_id: str, index: int, now: float) -> tuple[str, str]:
    """Pick e-mail number ``index`` on file for ``tax_id``; returns (address, link token)."""
    emails = company_emails(db, tax_id)
    if emails is None:
        raise UnknownTaxId(tax_id)
    if not 0 <= index < len(emails):
        raise ValidationFailed({"email_index": Msg("Choose one of the e-mail addresses shown.")})
    company_id = scalar(db, "SELECT id FROM companies WHERE tax_id = ?", (tax_id.upper(),))
    token = _one_time_token(db, "finish_registration", now, company_id=company_id, email=emails[index])
    audit(db, "registration.link_sent", company_id=company_id)
    return emails[index], token


def validate_finish(data: Mapping[str, Any], password_min: int, email: str) -> dict[str, Any]:
    errors = FieldErrors()
    values = {
        "full_name": forms.text(data, "full_name", errors, max_len=120),
        "username": forms.username(data, "username", errors),
    }
    _password_pair(data, errors, password_min, values["username"], email)
    errors.raise_if_any()
    values["password"] = data["password"]
    return values


def _password_pair(
    data: Mapping[str, Any], errors: FieldErrors, minimum: int, username: str, email: str, field: str = "password"
) -> None:
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


def _digits(phone: str) -> str:
    return "".join(c for c in phone if c.isdigit())


def phone_is_on_file(db: Db, company_id: int, phone: str) -> bool:
    """True when ``phone`` is the company's phone in the billing registry (formatting aside)."""
    on_file = scalar(db, "SELECT phone FROM companies WHERE id = ? AND in_registry = 1", (company_id,)) or ""
    return bool(_digits(on_file)) and _digits(on_file) == _digits(phone)


def finish_existing_registration(
    db: Db,
    record: dict[str, Any],
    values: dict[str, Any],
    password_hash: str,
    language: str,
    now: float,
    phone: str = "",
    *,
    proven: bool = True,
) -> dict[str, Any]:
    """Create the account of a known customer.

    ``proven``: the registrant showed control of something on file (the e-mail link, or a code sent
    to the company's own phone), so the account is active at once. A code sent to any other phone
    proves only that phone, so that account awaits an administrator's approval like a self-registration.
    """
    errors = FieldErrors()
    _check_unique(db, values["username"], record["email"], errors)
    errors.raise_if_any()
    status = "active" if proven else "pending"
    user_id = _insert_user(
        db,
        username=values["username"],
        email=record["email"],
        full_name=values["full_name"],
        phone=phone or record.get("phone", ""),
        password_hash=password_hash,
        status=status,
        language=language,
    )
    db.execute(
        "INSERT INTO profiles (user_id, company_id, role) VALUES (?, ?, 'customer')", (user_id, record["company_id"])
    )
    db.execute("UPDATE one_time_tokens SET used_at = ? WHERE token_hash = ?", (now, record["token_hash"]))
    audit(db, "user.registered_existing", user_id=user_id, company_id=record["company_id"], detail=status)
    company_name = scalar(db, "SELECT name FROM companies WHERE id = ?", (record["company_id"],))
    return {
        "id": user_id,
        "username": values["username"],
        "email": record["email"],
        "full_name": values["full_name"],
        "company_name": company_name,
        "status": status,
    }


PHONE_CODE_MINUTES = 15
MAX_CODES_PER_PHONE_PER_HOUR = 3


class TooManyCodes(Exception):
    """This phone was sent too many codes lately (each text costs money and pesters its owner)."""


def start_phone_registration(db: Db, tax_id: str, index: int, phone: str, now: float) -> tuple[str, str, str]:
    """Mobile flow: choose an e-mail on file and a phone; returns (request token, 4-digit code, email)."""
    emails = company_emails(db, tax_id)
    if emails is None:
        raise UnknownTaxId(tax_id)
    if not 0 <= index < len(emails):
        raise ValidationFailed({"email_index": Msg("Choose one of the e-mail addresses shown.")})
    # A code's request expires PHONE_CODE_MINUTES after it was made, so this counts the last hour's.
    recent = scalar(
        db,
        "SELECT COUNT(*) FROM one_time_tokens WHERE purpose = 'phone_registration' AND phone = ? AND expires_at > ?",
        (phone, now - 3600 + PHONE_CODE_MINUTES * 60),
    )
    if recent >= MAX_CODES_PER_PHONE_PER_HOUR:
        raise TooManyCodes(phone)
    company_id = scalar(db, "SELECT id FROM companies WHERE tax_id = ?", (tax_id.upper(),))
    code = f"{secrets.randbelow(10_000):04d}"
    token = _one_time_token(
        db,
        "phone_registration",
        now,
        hours=PHONE_CODE_MINUTES / 60,
        company_id=company_id,
        email=emails[index],
        phone=phone,
        code=code,
    )
    return token, code, emails[index]


MAX_CODE_ATTEMPTS = 5


def check_phone_code(db: Db, token: str, code: str, now: float) -> dict[str, Any] | None:
    """The registration request if ``code`` matches, else None after counting the attempt (so a
    4-digit code cannot be brute-forced: the request dies after a few misses)."""
    record = token_record(db, token, "phone_registration", now)
    if record is None or record["attempts"] >= MAX_CODE_ATTEMPTS:
        raise ValidationFailed({"code": Msg("The confirmation code has expired; request a new one.")})
    if not (len(code) == 4 and code.isdigit() and secrets.compare_digest(token_hash(code), record["code_hash"])):
        db.execute("UPDATE one_time_tokens SET attempts = attempts + 1 WHERE token_hash = ?", (record["token_hash"],))
        return None
    return record


# --- approval ---------------------------------------------------------------------------------


def pending_registrations(db: Db) -> list[dict[str, Any]]:
    return list(
        db.query(
            "SELECT u.id, u.username, u.email, u.full_name, u.phone, u.created_at, c.name AS company_name, "
            "c.tax_id, c.kind AS company_kind FROM users u JOIN profiles p ON p.user_id = u.id "
            "JOIN companies c ON c.id = p.company_id WHERE u.status = 'pending' ORDER BY u.created_at LIMIT 200"
        )
    )


def decide_registration(db: Db, admin_id: int, user_id: int, approve: bool) -> dict[str, Any] | None:
    user = one(
        db, "SELECT id, email, full_name, username, language FROM users WHERE id = ? AND status = 'pending'", (user_id,)
    )
    if user is None:
        return None
    status = "active" if approve else "rejected"
    db.execute(
        "UPDATE users SET status = ?, decided_at = ?, decided_by = ? WHERE id = ?",
        (status, now_iso(), admin_id, user_id),
    )
    if approve:
        db.execute(
            "UPDATE companies SET in_registry = 1 WHERE kind = 'prospect' AND id IN "
            "(SELECT company_id FROM profiles WHERE user_id = ?)",
            (user_id,),
        )
    audit(db, f"user.{status}", user_id=user_id, detail=f"by {admin_id}")
    return user


# --- login, throttling, sessions --------------------------------------------------------------


@dataclass(frozen=True)
class LoginOutcome:
    status: str  # ok | wrong_credentials | pending | rejected | locked | address_throttled
    user: dict[str, Any] | None = None
    locked_until: float = 0.0


def login_check(
    db: Db,
    login: str,
    password: str,
    address: str,
    now: float,
    *,
    max_account: int,
    max_address: int,
    lock_minutes: int,
) -> LoginOutcome:
    """Verify credentials with throttling per account and per address; records the outcome."""
    window_start = now - lock_minutes * 60
    recent = scalar(db, "SELECT COUNT(*) FROM login_failures WHERE address = ? AND at > ?", (address, window_start))
    if recent >= max_address:
        audit(db, "login.address_throttled", address=address)
        return LoginOutcome("address_throttled")
    user = one(db, "SELECT * FROM users WHERE lower(username) = lower(?) OR email = lower(?)", (login, login))
    # An unknown name is counted and locked exactly like an account: the answers never tell them apart.
    counter = user or _unknown_login(db, login, now)
    if counter["locked_until"] > now:
        return LoginOutcome("locked", locked_until=counter["locked_until"])
    if not verify_password(user["password_hash"] if user else None, password):
        db.execute("INSERT INTO login_failures (address, at) VALUES (?, ?)", (address, now))
        failures = counter["failed_logins"] + 1
        locked_until = now + lock_minutes * 60 if failures >= max_account else 0
        failures = 0 if locked_until else failures
        if user:
            db.execute(
                "UPDATE users SET failed_logins = ?, locked_until = ? WHERE id = ?",
                (failures, locked_until, user["id"]),
            )
            audit(db, "login.locked" if locked_until else "login.failed", user_id=user["id"], address=address)
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
    if user["status"] in ("pending", "rejected", "disabled"):
        return LoginOutcome("pending" if user["status"] == "pending" else "rejected")
    db.execute("UPDATE users SET failed_logins = 0, locked_until = 0 WHERE id = ?", (user["id"],))
    audit(db, "login.ok", user_id=user["id"], address=address)
    return LoginOutcome("ok", user=user)


#: How long failures under an unknown name are remembered after the last one (when no lock runs).
UNKNOWN_LOGIN_MEMORY_SECONDS = 86400


def _unknown_login(db: Db, login: str, now: float) -> dict[str, Any]:
    """The failure count and lock of a name that belongs to no account (zero when never seen)."""
    db.execute(
        "DELETE FROM unknown_login_failures WHERE last_failure_at < ? AND locked_until < ?",
        (now - UNKNOWN_LOGIN_MEMORY_SECONDS, now),
    )
    row = one(db, "SELECT failed_logins, locked_until FROM unknown_login_failures WHERE login = ?", (login.lower(),))
    return row or {"failed_logins": 0, "locked_until": 0.0}


def create_session(db: Db, user_id: int, kind: str, hours: int, now: float, language: str | None = None) -> str:
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
    return list(
        db.query(
            "SELECT p.id, p.role, p.company_id, c.name AS company_name, c.tax_id FROM profiles p "
            "JOIN companies c ON c.id = p.company_id WHERE p.user_id = ? ORDER BY p.id",
            (user_id,),
        )
    )


def select_profile(db: Db, session_hash: str, user_id: int, profile_id: int) -> dict[str, Any] | None:
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


def change_password(db: Db, user_id: int, current: str, new_hash: str, keep_session: str, now: float) -> bool:
    user = one(db, "SELECT password_hash FROM users WHERE id = ?", (user_id,))
    if not user or not verify_password(user["password_hash"], current):
        return False
    set_password_hash(db, user_id, new_hash, now)
    # Other sessions (a stolen cookie, another device) end with the old password.
    db.execute("DELETE FROM sessions WHERE user_id = ? AND token_hash != ?", (user_id, keep_session))
    audit(db, "password.changed", user_id=user_id)
    return True


#: The e-mailed links that let whoever holds them choose the account's password.
PASSWORD_LINKS = ("reset_password", "set_password")


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


def validate_new_password(data: Mapping[str, Any], minimum: int, username: str, email: str) -> str:
    errors = FieldErrors()
    _password_pair(data, errors, minimum, username, email, field="new_password")
    errors.raise_if_any()
    return data["new_password"]


def start_password_reset(db: Db, email: str, now: float) -> tuple[dict[str, Any], str] | None:
    """A new reset link for an active account; every earlier one stops working (only the newest mail counts)."""
    user = one(db, "SELECT id, email, full_name, language FROM users WHERE email = ? AND status = 'active'", (email,))
    if user is None:
        return None
    _void_password_links(db, user["id"], now)
    token = _one_time_token(db, "reset_password", now, hours=1, user_id=user["id"], email=email)
    audit(db, "password.reset_requested", user_id=user["id"])
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
    audit(db, "password.reset", user_id=record["user_id"])
    return True


def user_by_id(db: Db, user_id: int) -> dict[str, Any] | None:
    return one(db, "SELECT id, username, email, full_name, status, language FROM users WHERE id = ?", (user_id,))


def recent_audit(db: Db, limit: int = 100) -> list[dict[str, Any]]:
    return list(
        db.query(
            "SELECT a.*, u.username FROM audit_log a LEFT JOIN users u ON u.id = a.user_id ORDER BY a.id DESC LIMIT ?",
            (limit,),
        )
    )
