"""What the customer's ticket pages list without a cap: confirmed purchases by page, open itineraries by search.

A big customer's purchases are read a page at a time (keyset, never OFFSET, as the staff lists do),
and an itinerary is found by the start of its vessel or voyage instead of from a list of every open
one, so a port with thousands of vessel calls can still be chosen from.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from server.db import one
from server.sql import Connection
from server.tickets.paging import FIRST_PAGE, Keyset, Page, starts_with
from server.tickets.purchases import purchases_page

Db = Connection
#: Itineraries offered at once; more are found by typing the start of their vessel or voyage.
ITINERARY_CHOICES = 20
#: The longest search kept (a vessel or voyage prefix is short; more only costs the index).
SEARCH_LENGTH = 60


def confirmed_purchases(db: Db, company_id: int, at: Keyset = FIRST_PAGE) -> Page:
    """One page of the company's purchases whose payment is confirmed (its balance), newest first."""
    return purchases_page(db, status="confirmed", company_id=company_id, at=at)


def _open_since(now: datetime) -> str:
    return now.astimezone(UTC).isoformat(timespec="minutes")


def itinerary_search(text: str) -> str:
    """What a typed search means: its words single-spaced, at most ``SEARCH_LENGTH`` characters."""
    return " ".join(text.split())[:SEARCH_LENGTH]


def open_itineraries(
    db: Db, now: datetime, search: str = "", limit: int = ITINERARY_CHOICES, *, after: int | None = None
) -> list[dict[str, Any]]:
    """Open itineraries (active, gate window not over) whose vessel or voyage starts with ``search``, soonest first;
    given ``after`` (an itinerary's id), only those that come after it in that order (the next page)."""
    conditions = "active = 1 AND valid_until > ?"
    params: list[Any] = [_open_since(now)]
    if search:
        conditions += " AND (vessel LIKE ? ESCAPE '\\' OR voyage LIKE ? ESCAPE '\\')"
        params += [starts_with(search)] * 2
    if after:
        # Keyset on (eta, id), the list's own order: no row shows twice and rows added or closed meanwhile
        # do not shift the pages (as OFFSET would), however deep the page.
        conditions += " AND (eta, id) > (SELECT eta, id FROM itineraries WHERE id = ?)"
        params.append(after)
    return list(db.query(f"SELECT * FROM itineraries WHERE {conditions} ORDER BY eta, id LIMIT ?", (*params, limit)))


def open_itineraries_by_id(db: Db, ids: list[int], now: datetime) -> list[dict[str, Any]]:
    """The open ones among ``ids`` (choices already made stay on the form whatever the search shows)."""
    if not ids:
        return []
    placeholders = ",".join("?" * len(ids))
    return list(
        db.query(
            f"SELECT * FROM itineraries WHERE id IN ({placeholders}) AND active = 1 AND valid_until > ? "
            "ORDER BY eta, id",
            (*ids, _open_since(now)),
        )
    )


def generation_of(db: Db, company_id: int, generation_id: int) -> dict[str, Any] | None:
    """A generation of this company with its itinerary (None for another company's: it is "not found")."""
    generation = one(db, "SELECT * FROM generations WHERE id = ? AND company_id = ?", (generation_id, company_id))
    if generation is None:
        return None
    generation["itinerary"] = one(db, "SELECT * FROM itineraries WHERE id = ?", (generation["itinerary_id"],))
    return generation
