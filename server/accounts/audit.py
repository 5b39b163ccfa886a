"""The audit log: who did what, when and from where; written by every area, read by administrators."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from gate_core.clock import utc_iso

Db = sqlite_utils.Database


def stored_time(now: float | datetime) -> str:
    """``now`` (epoch seconds or an aware datetime) as the accounts tables store times: UTC ISO text."""
    moment = now if isinstance(now, datetime) else datetime.fromtimestamp(now, UTC)
    return utc_iso(moment, "seconds")


def audit(
    db: Db,
    event: str,
    *,
    now: float | datetime | None = None,
    user_id: int | None = None,
    company_id: int | None = None,
    detail: str = "",
    address: str = "",
) -> None:
    """Record ``event`` at ``now``.

    ``now`` is left out only by the areas whose services do not take the time yet (tickets, gate,
    helpdesk); once they pass it, it becomes required and this clock read goes.
    """
    at = stored_time(datetime.now(UTC) if now is None else now)
    db.execute(
        "INSERT INTO audit_log (at, user_id, company_id, event, detail, address) VALUES (?, ?, ?, ?, ?, ?)",
        (at, user_id, company_id, event, detail[:500], address[:100]),
    )


def recent_audit(db: Db, limit: int = 100) -> list[dict[str, Any]]:
    """The newest ``limit`` events with the acting user's name."""
    return list(
        db.query(
            "SELECT a.*, u.username FROM audit_log a LEFT JOIN users u ON u.id = a.user_id ORDER BY a.id DESC LIMIT ?",
            (limit,),
        )
    )
