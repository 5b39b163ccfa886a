"""Approvals: an administrator accepts or refuses the accounts that await it.

Every function takes a ``sqlite_utils.Database`` and runs on a DB thread (see ``server.db``).
"""

from __future__ import annotations

from typing import Any

import sqlite_utils

from server.accounts.audit import audit, stored_time
from server.db import one

Db = sqlite_utils.Database


def pending_registrations(db: Db) -> list[dict[str, Any]]:
    """The accounts awaiting approval, oldest first, with their company."""
    return list(
        db.query(
            "SELECT u.id, u.username, u.email, u.full_name, u.phone, u.created_at, c.name AS company_name, "
            "c.tax_id, c.kind AS company_kind FROM users u JOIN profiles p ON p.user_id = u.id "
            "JOIN companies c ON c.id = p.company_id WHERE u.status = 'pending' ORDER BY u.created_at LIMIT 200"
        )
    )


def decide_registration(db: Db, admin_id: int, user_id: int, approve: bool, now: float) -> dict[str, Any] | None:
    """Activate or reject a pending account (approving a prospect puts its company in the registry);
    None when it is not pending (already decided, or no such account)."""
    user = one(
        db, "SELECT id, email, full_name, username, language FROM users WHERE id = ? AND status = 'pending'", (user_id,)
    )
    if user is None:
        return None
    status = "active" if approve else "rejected"
    db.execute(
        "UPDATE users SET status = ?, decided_at = ?, decided_by = ? WHERE id = ?",
        (status, stored_time(now), admin_id, user_id),
    )
    if approve:
        db.execute(
            "UPDATE companies SET in_registry = 1 WHERE kind = 'prospect' AND id IN "
            "(SELECT company_id FROM profiles WHERE user_id = ?)",
            (user_id,),
        )
    audit(db, f"user.{status}", now=now, user_id=user_id, detail=f"by {admin_id}")
    return user
