"""Integration tokens: named API tokens an administrator gives a machine (an ERP, a bank reconciliation).

A token acts with one staff role at its creator's company and on the creator's account: it dies
when it is revoked or when the creator's account is no longer active. Only its hash is kept; the
token itself is shown once, at creation. Every use is written to the audit log.

Every function takes a connection (``server.sql.Connection``) and runs on a DB thread (see ``server.db``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server import forms
from server.accounts.audit import audit, stored_time
from server.accounts.users import new_row_id
from server.db import one
from server.forms import FieldErrors
from server.i18n import Msg
from server.security import new_token, token_hash
from server.sql import Connection

Db = Connection

#: What a token starts with, so the API tells it from a session or a kiosk token without a lookup.
TOKEN_PREFIX = "pgi_"
#: The roles a machine may act with. Not ``admin``: a token must never create tokens or accounts.
INTEGRATION_ROLES = ("billing_clerk", "operations", "gate_supervisor", "helpdesk_agent")


def validate_token_request(data: Mapping[str, Any]) -> dict[str, str]:
    """The name and role of a new token; raises with one message per bad field."""
    errors = FieldErrors()
    name = forms.text(data, "name", errors, max_len=80)
    role = data.get("role")
    if not role:
        errors.add("role", forms.REQUIRED)
    elif role not in INTEGRATION_ROLES:
        errors.add("role", Msg("Choose one of the roles offered."))
    errors.raise_if_any()
    return {"name": name, "role": str(role)}


def create_token(
    db: Db, fields: Mapping[str, str], creator_id: int, company_id: int, now: float
) -> tuple[dict[str, Any], str]:
    """A new token for ``fields`` (name, role); returns its row and the token, which is never stored."""
    token = TOKEN_PREFIX + new_token()
    token_id = new_row_id(
        db.execute(
            "INSERT INTO integration_tokens (name, role, company_id, token_hash, created_by, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (fields["name"], fields["role"], company_id, token_hash(token), creator_id, stored_time(now)),
        )
    )
    audit(db, "integration.created", now=now, user_id=creator_id, detail=f"#{token_id} {fields['name']}")
    row = token_by_id(db, token_id)
    assert row is not None  # just inserted in this transaction
    return row, token


_LISTED = (
    "SELECT t.id, t.name, t.role, t.created_at, t.last_used_at, t.revoked_at, u.username AS created_by "
    "FROM integration_tokens t JOIN users u ON u.id = t.created_by"
)


def list_tokens(db: Db) -> list[dict[str, Any]]:
    """Every token, those in use first, newest first; never the token itself."""
    return list(db.query(f"{_LISTED} ORDER BY t.revoked_at IS NOT NULL, t.id DESC"))


def token_by_id(db: Db, token_id: int) -> dict[str, Any] | None:
    return one(db, f"{_LISTED} WHERE t.id = ?", (token_id,))


def revoke_token(db: Db, token_id: int, admin_id: int, now: float) -> dict[str, Any] | None:
    """Revoke a token in use; None when there is no such token or it was already revoked."""
    revoked = db.execute(
        "UPDATE integration_tokens SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL",
        (stored_time(now), admin_id, token_id),
    ).rowcount
    if not revoked:
        return None
    row = token_by_id(db, token_id)
    assert row is not None
    audit(db, "integration.revoked", now=now, user_id=admin_id, detail=f"#{token_id} {row['name']}")
    return row


def use_token(db: Db, token: str, method: str, path: str, address: str, now: float) -> dict[str, Any] | None:
    """The principal's fields of a token in use (its creator still active), after writing the use to
    the audit log; None for a revoked, unknown or orphaned token."""
    row = one(
        db,
        "SELECT t.id AS token_id, t.name AS token_name, t.role, t.company_id, c.name AS company_name, "
        "u.id AS user_id, u.username, u.email, u.language FROM integration_tokens t "
        "JOIN users u ON u.id = t.created_by JOIN companies c ON c.id = t.company_id "
        "WHERE t.token_hash = ? AND t.revoked_at IS NULL AND u.status = 'active'",
        (token_hash(token),),
    )
    if row is None:
        return None
    db.execute("UPDATE integration_tokens SET last_used_at = ? WHERE id = ?", (stored_time(now), row["token_id"]))
    detail = f"#{row['token_id']} {row['token_name']}: {method} {path}"
    audit(
        db,
        "integration.used",
        now=now,
        user_id=row["user_id"],
        company_id=row["company_id"],
        detail=detail,
        address=address,
    )
    return row
