"""Operations' catalogue at port scale: itineraries and services listed, searched, edited and closed.

Adding and the CSV imports live in ``server.tickets.service``. Closing is ``active = 0``: a closed
itinerary or service can no longer be chosen for a new generation (``generate_tickets`` checks it),
while tickets already generated keep working at the gate within their itinerary's window, because
the gate's decision looks at the window, never at ``active``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from server.accounts.audit import audit
from server.db import one, scalar
from server.forms import ValidationFailed
from server.i18n import Msg
from server.sql import Connection
from server.tickets.paging import FIRST_PAGE, Keyset, Page, keyset_page, starts_with
from server.tickets.service import TicketError, next_seq, save_itinerary

Db = Connection

#: A list's status filter → its condition on ``active``.
ACTIVE_FILTERS = {"open": "active = 1", "closed": "active = 0"}
STATUSES = tuple(ACTIVE_FILTERS)


def _filters(search: str, status: str, columns: tuple[str, ...]) -> tuple[list[str], list[Any]]:
    conditions = [ACTIVE_FILTERS[status]] if status in ACTIVE_FILTERS else []
    params: list[Any] = []
    if search:
        conditions.append("(" + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in columns) + ")")
        params += [starts_with(search)] * len(columns)
    return conditions, params


def itineraries_page(db: Db, *, search: str = "", status: str = "", at: Keyset = FIRST_PAGE, limit: int = 50) -> Page:
    """Itineraries newest first; ``search`` matches the start of the vessel or the voyage."""
    conditions, params = _filters(search, status, ("vessel", "voyage"))
    return keyset_page(db, "SELECT * FROM itineraries", conditions, params, at, limit=limit)


def services_page(db: Db, *, search: str = "", status: str = "", at: Keyset = FIRST_PAGE, limit: int = 50) -> Page:
    """Services newest first; ``search`` matches the start of the code or of either name."""
    conditions, params = _filters(search, status, ("code", "name_es", "name_en"))
    return keyset_page(db, "SELECT * FROM services", conditions, params, at, limit=limit)


def get_service(db: Db, service_id: int) -> dict[str, Any] | None:
    return one(db, "SELECT * FROM services WHERE id = ?", (service_id,))


def edit_itinerary(db: Db, itinerary_id: int, values: dict[str, Any], actor_id: int | None, *, now: datetime) -> int:
    """Change an itinerary's fields (``validate_itinerary``'s); its tickets follow the new window."""
    return save_itinerary(db, values, actor_id, itinerary_id, now=now)


def edit_service(db: Db, service_id: int, values: dict[str, Any], actor_id: int | None, *, now: datetime) -> int:
    """Change a service's code and names; generated tickets keep naming it by id."""
    clash = scalar(db, "SELECT id FROM services WHERE code = ? AND id != ?", (values["code"], service_id))
    if clash:
        raise ValidationFailed({"code": Msg("Another service has this code.")})
    found = db.execute(
        "UPDATE services SET code = ?, name_es = ?, name_en = ? WHERE id = ?",
        (values["code"], values["name_es"], values["name_en"], service_id),
    ).rowcount
    if not found:
        raise TicketError("not_found", Msg("Not found."))
    audit(db, "service.edited", now=now, user_id=actor_id, detail=values["code"])
    return service_id


def close_itinerary(db: Db, itinerary_id: int, actor_id: int | None = None, *, now: datetime) -> dict[str, Any]:
    """No new generations for this itinerary; its tickets keep their gate window."""
    itinerary = _open_row(db, "itineraries", itinerary_id)
    # Kiosks keep the itineraries of their tickets: a new sync number brings them the closed state.
    db.execute("UPDATE itineraries SET active = 0, sync_seq = ? WHERE id = ?", (next_seq(db), itinerary_id))
    audit(db, "itinerary.closed", now=now, user_id=actor_id, detail=f"{itinerary['vessel']} {itinerary['voyage']}")
    return {**itinerary, "active": 0}


def close_service(db: Db, service_id: int, actor_id: int | None = None, *, now: datetime) -> dict[str, Any]:
    """No new generations with this service; tickets that have it keep it."""
    service = _open_row(db, "services", service_id)
    db.execute("UPDATE services SET active = 0 WHERE id = ?", (service_id,))
    audit(db, "service.closed", now=now, user_id=actor_id, detail=service["code"])
    return {**service, "active": 0}


def _open_row(db: Db, table: str, row_id: int) -> dict[str, Any]:
    row = one(db, f"SELECT * FROM {table} WHERE id = ?", (row_id,))
    if row is None:
        raise TicketError("not_found", Msg("Not found."))
    if not row["active"]:
        raise TicketError("closed", Msg("It is already closed."))
    return row
