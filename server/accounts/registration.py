"""Registration: self-registration by tax id, an existing customer's link or texted code, a prospect.

Every function takes a connection (``server.sql.Connection``) and runs on a DB thread (see ``server.db``);
write functions run inside one transaction, so a raised error leaves nothing behind.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from collections.abc import Mapping
from typing import Any

from server import forms
from server.accounts.audit import audit, stored_time
from server.accounts.passwords import password_pair
from server.accounts.registry import company_emails
from server.accounts.users import (
    UnknownTaxId,
    check_unique,
    create_user,
    invite_user,
    new_row_id,
    one_time_token,
    token_record,
)
from server.db import one, scalar
from server.forms import FieldErrors, ValidationFailed
from server.i18n import Msg
from server.security import token_hash
from server.sql import Connection

Db = Connection

PHONE_CODE_MINUTES = 15
MAX_CODES_PER_PHONE_PER_HOUR = 3
MAX_CODE_ATTEMPTS = 5
#: Wrong codes one phone, or one company, may have entered in 24 hours, however many codes it asked
#: for: with 5 misses per code and 3 codes an hour, a 4-digit code would otherwise fall in days.
MAX_CODE_MISSES_PER_DAY = 10


CODE_EXPIRED = Msg("The confirmation code has expired; request a new one.")
CODE_SPENT = Msg("The code was entered wrong too many times; request a new one.")


class TooManyCodes(Exception):
    """This phone, or this client address, was sent too many codes lately (each text costs money and
    pesters its owner), or too many wrong codes were entered for this phone or company today;
    ``per`` says which: "phone", "address" or "misses"."""

    def __init__(self, per: str) -> None:
        super().__init__(per)
        self.per = per


# --- self-registration ------------------------------------------------------------------------


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
    password_pair(data, errors, password_min, values["username"], values["email"])
    errors.raise_if_any()
    values["password"] = data["password"]
    return values


def register_user(
    db: Db, values: dict[str, Any], password_hash: str, language: str, now: float, address: str = ""
) -> dict[str, Any]:
    """Create a pending account with a customer profile for the registered company."""
    company = one(db, "SELECT id, name FROM companies WHERE tax_id = ? AND in_registry = 1", (values["tax_id"],))
    if company is None:
        raise UnknownTaxId(values["tax_id"])
    errors = FieldErrors()
    check_unique(db, values["username"], values["email"], errors)
    errors.raise_if_any()
    user_id = create_user(
        db,
        values,
        company["id"],
        ["customer"],
        password_hash=password_hash,
        status="pending",
        language=language,
        now=now,
    )
    audit(db, "user.registered", now=now, user_id=user_id, company_id=company["id"], address=address)
    return {"id": user_id, "company_name": company["name"], **{k: v for k, v in values.items() if k != "password"}}


# --- a prospect (not yet a customer) ----------------------------------------------------------


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
    forms.phone_confirmation(data, "phone_confirm", values["phone"], errors)
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
    company_id = new_row_id(
        db.execute(
            "INSERT INTO companies (tax_id, name, emails, phone, kind, in_registry, created_at) "
            "VALUES (?, ?, ?, ?, 'prospect', 0, ?) RETURNING id",
            (
                values["tax_id"],
                values["company_name"],
                json.dumps([values["email"]]),
                values["phone"],
                stored_time(now),
            ),
        )
    )
    contact = {**values, "username": values["email"], "full_name": values["contact"]}
    user_id, token = invite_user(db, company_id, ["prospect"], contact, "pending", language, now)
    audit(db, "prospect.registered", now=now, user_id=user_id, company_id=company_id)
    return {"id": user_id, "username": values["email"], **values}, token


# --- an existing customer: an e-mail on file gets a link, or a phone gets a code ---------------


def masked_emails(db: Db, tax_id: str) -> list[str] | None:
    """The e-mails on file for an existing customer, masked, in a stable order; None if unknown."""
    emails = company_emails(db, tax_id)
    return None if emails is None else [forms.mask_email(e) for e in emails]


def _chosen_email(db: Db, tax_id: str, index: int) -> tuple[int, str]:
    """The company's id and its e-mail number ``index`` on file."""
    emails = company_emails(db, tax_id)
    if emails is None:
        raise UnknownTaxId(tax_id)
    if not 0 <= index < len(emails):
        raise ValidationFailed({"email_index": Msg("Choose one of the e-mail addresses shown.")})
    company_id = scalar(db, "SELECT id FROM companies WHERE tax_id = ?", (tax_id.upper(),))
    return company_id, emails[index]


def start_existing_registration(db: Db, tax_id: str, index: int, now: float) -> tuple[str, str]:
    """Pick e-mail number ``index`` on file for ``tax_id``; returns (address, link token)."""
    company_id, email = _chosen_email(db, tax_id, index)
    token = one_time_token(db, "finish_registration", now, company_id=company_id, email=email)
    audit(db, "registration.link_sent", now=now, company_id=company_id)
    return email, token


def code_limit_address(address: str) -> str:
    """The client address as the limit of codes counts it: an IPv4 address as it is, an IPv6 one as
    its /64 network (one subscriber's line gets a whole /64, so a script could take a new address
    for every request)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if not isinstance(ip, ipaddress.IPv6Address):
        return address
    if ip.ipv4_mapped is not None:  # an IPv4 client on a dual-stack socket
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((ip, 64), strict=False))


def _check_misses(db: Db, phone_digits: str, company_id: int, now: float) -> None:
    """Refuse once the phone, or the company, has had MAX_CODE_MISSES_PER_DAY wrong codes in 24 hours."""
    # A request expires PHONE_CODE_MINUTES after it was made, so these sum the last 24 hours' requests.
    since = now - 86_400 + PHONE_CODE_MINUTES * 60
    summed = (
        "SELECT COALESCE(SUM(attempts), 0) FROM one_time_tokens "
        "WHERE purpose = 'phone_registration' AND expires_at > ? AND "
    )
    for column, value in (("phone_digits", phone_digits), ("company_id", company_id)):
        if scalar(db, summed + column + " = ?", (since, value)) >= MAX_CODE_MISSES_PER_DAY:
            raise TooManyCodes("misses")


def _check_code_limits(
    db: Db, phone_digits: str, company_id: int, address: str, address_limit: int, now: float
) -> None:
    """Refuse a code beyond the phone's hourly limit, the client address's (0: no address limit), or
    once the phone or the company has had too many wrong codes today."""
    _check_misses(db, phone_digits, company_id, now)
    # A code's request expires PHONE_CODE_MINUTES after it was made, so these count the last hour's.
    since = now - 3600 + PHONE_CODE_MINUTES * 60
    counted = "SELECT COUNT(*) FROM one_time_tokens WHERE purpose = 'phone_registration' AND expires_at > ? AND "
    if scalar(db, counted + "phone_digits = ?", (since, phone_digits)) >= MAX_CODES_PER_PHONE_PER_HOUR:
        raise TooManyCodes("phone")
    if address_limit and scalar(db, counted + "address = ?", (since, address)) >= address_limit:
        raise TooManyCodes("address")


def start_phone_registration(
    db: Db, tax_id: str, index: int, phone: str, now: float, *, address: str = "", address_limit: int = 0
) -> tuple[str, str, str]:
    """Mobile flow: choose an e-mail on file and a phone; returns (request token, 4-digit code, email).

    ``address`` is the client's, counted (by its /64 for IPv6) against ``address_limit`` codes an
    hour (0: not limited). The phone is counted by its digits, however it was written."""
    company_id, email = _chosen_email(db, tax_id, index)
    digits = forms.phone_digits(phone)
    _check_code_limits(db, digits, company_id, code_limit_address(address), address_limit, now)
    code = f"{secrets.randbelow(10_000):04d}"
    token = one_time_token(
        db,
        "phone_registration",
        now,
        hours=PHONE_CODE_MINUTES / 60,
        company_id=company_id,
        email=email,
        phone=phone,
        code=code,
    )
    db.execute(
        "UPDATE one_time_tokens SET address = ?, phone_digits = ? WHERE token_hash = ?",
        (code_limit_address(address), digits, token_hash(token)),
    )
    audit(db, "registration.code_sent", now=now, company_id=company_id, address=address)
    return token, code, email


def drop_phone_registration(db: Db, token: str) -> None:
    """Forget a request whose code never left (the SMS gateway did not take it)."""
    db.execute(
        "DELETE FROM one_time_tokens WHERE token_hash = ? AND purpose = 'phone_registration'", (token_hash(token),)
    )


def phone_registration(db: Db, token: str, now: float) -> dict[str, Any]:
    """The live registration request ``token`` (its e-mail, phone, attempts); raises once it is
    unknown, used, expired or out of attempts."""
    record = token_record(db, token, "phone_registration", now)
    if record is None or record["attempts"] >= MAX_CODE_ATTEMPTS:
        raise ValidationFailed({"code": CODE_EXPIRED})
    return record


def code_attempts_left(db: Db, token: str, now: float) -> int:
    """How many more codes the live request ``token`` takes (0 once it is gone)."""
    record = token_record(db, token, "phone_registration", now)
    return 0 if record is None else max(MAX_CODE_ATTEMPTS - record["attempts"], 0)


def check_phone_code(db: Db, token: str, code: str, now: float) -> dict[str, Any] | None:
    """The registration request if ``code`` matches, else None after counting the attempt (so a
    4-digit code cannot be brute-forced: the request dies after a few misses, and the phone and the
    company take only so many a day, over all their requests: ``TooManyCodes("misses")``)."""
    record = phone_registration(db, token, now)
    _check_misses(db, record["phone_digits"], record["company_id"], now)
    if not (len(code) == 4 and code.isdigit() and secrets.compare_digest(token_hash(code), record["code_hash"])):
        db.execute("UPDATE one_time_tokens SET attempts = attempts + 1 WHERE token_hash = ?", (record["token_hash"],))
        return None
    return record


def validate_finish(data: Mapping[str, Any], password_min: int, email: str) -> dict[str, Any]:
    errors = FieldErrors()
    values = {
        "full_name": forms.text(data, "full_name", errors, max_len=120),
        "username": forms.username(data, "username", errors),
    }
    password_pair(data, errors, password_min, values["username"], email)
    errors.raise_if_any()
    values["password"] = data["password"]
    return values


def phone_is_on_file(db: Db, company_id: int, phone: str) -> bool:
    """True when ``phone`` is the company's phone in the billing registry (formatting aside)."""
    on_file = scalar(db, "SELECT phone FROM companies WHERE id = ? AND in_registry = 1", (company_id,)) or ""
    return bool(forms.phone_digits(on_file)) and forms.phone_digits(on_file) == forms.phone_digits(phone)


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
    check_unique(db, values["username"], record["email"], errors)
    errors.raise_if_any()
    status = "active" if proven else "pending"
    person = {**values, "email": record["email"], "phone": phone or record.get("phone", "")}
    user_id = create_user(
        db,
        person,
        record["company_id"],
        ["customer"],
        password_hash=password_hash,
        status=status,
        language=language,
        now=now,
    )
    db.execute("UPDATE one_time_tokens SET used_at = ? WHERE token_hash = ?", (now, record["token_hash"]))
    audit(db, "user.registered_existing", now=now, user_id=user_id, company_id=record["company_id"], detail=status)
    company_name = scalar(db, "SELECT name FROM companies WHERE id = ?", (record["company_id"],))
    return {
        "id": user_id,
        "username": values["username"],
        "email": record["email"],
        "full_name": values["full_name"],
        "company_name": company_name,
        "status": status,
    }
