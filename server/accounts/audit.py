"""The audit log: who did what, when and from where; written by every area, read by administrators."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from gate_core.clock import utc_iso
from server import forms
from server.accounts.list_query import PAGE_SIZE, optional_id, page_size, rows_and_cursor
from server.db import scalar
from server.forms import FieldErrors, optional_day
from server.i18n import Msg
from server.sql import Connection

Db = Connection


def stored_time(now: float | datetime) -> str:
    """``now`` (epoch seconds or an aware datetime) as the accounts tables store times: UTC ISO text."""
    moment = now if isinstance(now, datetime) else datetime.fromtimestamp(now, UTC)
    return utc_iso(moment, "seconds")


def audit(
    db: Db,
    event: str,
    *,
    now: float | datetime,
    user_id: int | None = None,
    company_id: int | None = None,
    detail: str = "",
    address: str = "",
) -> None:
    """Record ``event`` at ``now`` (the handler's clock, passed down)."""
    at = stored_time(now)
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


@dataclass(frozen=True)
class AuditQuery:
    """What a page of the log shows: filters, and the event after which (older than which) it starts.

    ``date_from`` and ``date_to`` (inclusive) are days of the terminal's calendar.
    """

    event: str = ""
    user_id: int | None = None
    company_id: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    after: int | None = None
    limit: int = PAGE_SIZE


def parse_audit_query(params: Mapping[str, Any]) -> AuditQuery:
    """The log's query (``event``, ``user_id``, ``company_id``, ``from``, ``to``, ``after``, ``limit``), checked."""
    errors = FieldErrors()
    event = forms.text(params, "event", errors, max_len=100, required=False)
    ids = {name: optional_id(params, name, errors) for name in ("user_id", "company_id", "after")}
    date_from, date_to = optional_day(params, "from", errors), optional_day(params, "to", errors)
    if date_from and date_to and date_to < date_from:
        errors.add("to", Msg("The end date is before the start date."))
    limit = page_size(params, errors)
    errors.raise_if_any()
    return AuditQuery(event, ids["user_id"], ids["company_id"], date_from, date_to, ids["after"], limit)


def _midnight(day: date, zone: tzinfo) -> str:
    """The start of ``day`` in ``zone`` as the log stores times, to compare as text."""
    return stored_time(datetime.combine(day, time(), zone))


def audit_page(db: Db, query: AuditQuery, zone: tzinfo) -> tuple[list[dict[str, Any]], int | None]:
    """One page of events, newest first, and the cursor of the next (older) page (None on the last).

    The cursor is the last event's id, so events recorded meanwhile never shift a page; each filter
    has an ``(column, id)`` index that SQLite reads newest first from the cursor.
    """
    where: list[str] = []
    params: list[Any] = []
    for column, value in (("a.event", query.event), ("a.user_id", query.user_id), ("a.company_id", query.company_id)):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    if query.date_from:
        where.append("a.at >= ?")
        params.append(_midnight(query.date_from, zone))
    if query.date_to:
        where.append("a.at < ?")
        params.append(_midnight(query.date_to + timedelta(days=1), zone))
    if query.after:
        where.append("a.id < ?")
        params.append(query.after)
    sql = (
        "SELECT a.id, a.at, a.event, a.user_id, u.username, a.company_id, c.name AS company_name, a.detail, "
        "a.address FROM audit_log a LEFT JOIN users u ON u.id = a.user_id LEFT JOIN companies c ON c.id = a.company_id"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + " ORDER BY a.id DESC LIMIT ?"
    )
    return rows_and_cursor(list(db.query(sql, [*params, query.limit + 1])), query.limit)


def user_id_named(db: Db, username: str) -> int | None:
    """The id of the account with this user name (the page's user filter); None when there is none."""
    return scalar(db, "SELECT id FROM users WHERE username = ?", (username,))
