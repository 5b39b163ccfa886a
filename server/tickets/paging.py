"""Keyset pagination of the staff lists: newest first by id, a page starts after or before an id.

Never OFFSET: a page is found through the index whatever its depth, and rows added meanwhile never
shift a page (a row added while someone reads page 3 shows on page 1, not again on page 4).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from server.forms import parse_id
from server.sql import Connection

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


@dataclass(frozen=True)
class Keyset:
    """Where a page starts: rows older than ``after``, or newer than ``before``; neither: the newest."""

    after: int | None = None
    before: int | None = None

    @classmethod
    def of(cls, query: Mapping[str, str]) -> Keyset:
        """From ``?after=`` / ``?before=``; an id that cannot be one is ignored (the first page)."""
        before = parse_id(query.get("before"))
        return cls(after=None if before else parse_id(query.get("after")), before=before)


FIRST_PAGE = Keyset()


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    older: int | None  #: send as ``?after=`` for the next (older) page; None on the last
    newer: int | None  #: send as ``?before=`` for the previous (newer) page; None on the first


def keyset_page(
    db: Connection,
    select: str,
    conditions: Sequence[str],
    params: Sequence[Any],
    at: Keyset,
    *,
    id_column: str = "id",
    limit: int = PAGE_SIZE,
) -> Page:
    """One page of ``select`` (whose rows carry ``id``) filtered by every one of ``conditions``."""
    where, args = list(conditions), list(params)
    if at.before:
        where.append(f"{id_column} > ?")
        args.append(at.before)
    elif at.after:
        where.append(f"{id_column} < ?")
        args.append(at.after)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    order = "ASC" if at.before else "DESC"
    rows = list(db.query(f"{select}{clause} ORDER BY {id_column} {order} LIMIT ?", (*args, limit + 1)))
    more, rows = len(rows) > limit, rows[:limit]
    if at.before:
        rows.reverse()
        return Page(rows, rows[-1]["id"] if rows else None, rows[0]["id"] if more and rows else None)
    return Page(rows, rows[-1]["id"] if more else None, rows[0]["id"] if at.after and rows else None)


def contains(term: str) -> str:
    """A ``LIKE ? ESCAPE '\\'`` pattern matching text that contains ``term`` (its ``%`` and ``_`` literal)."""
    return "%" + starts_with(term)


def starts_with(term: str) -> str:
    """A ``LIKE ? ESCAPE '\\'`` pattern matching text that begins with ``term`` (its ``%`` and ``_`` literal)."""
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
