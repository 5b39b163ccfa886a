"""decide()'s inputs built from what either side stores about a ticket: one function for both.

The server reads its database and the kiosk its cache, but both hand the same named record to
:func:`ticket_facts` and :func:`itinerary_window`, so the facts the rules see cannot drift
apart (the order of services, the kiosk named for a prior use, a window that ends before it
starts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from gate_core.decision import ItineraryWindow, PriorUse, TicketFacts


@dataclass(frozen=True)
class TicketRecord:
    """What is stored about one ticket, by name, as the server's database or a kiosk's cache holds it."""

    ticket_id: int
    itinerary_id: int
    printed: bool
    deleted: bool
    company_name: str = ""
    itinerary_label: str = ""
    service_ids: Sequence[int] = ()  # the generation's services, in the order they were chosen
    service_names: Mapping[int, str] = field(default_factory=dict)  # id → name in the reader's language
    used_at: datetime | None = None
    used_kiosk_name: str = ""
    used_scan_id: str = ""


def ticket_facts(record: TicketRecord) -> tuple[TicketFacts, PriorUse | None]:
    """The ticket's facts and its prior use (None when unused), as decide() takes them."""
    facts = TicketFacts(
        ticket_id=record.ticket_id,
        itinerary_id=record.itinerary_id,
        printed=record.printed,
        deleted=record.deleted,
        company_name=record.company_name,
        itinerary_label=record.itinerary_label,
        services=tuple(record.service_names[s] for s in record.service_ids if s in record.service_names),
    )
    prior = None
    if record.used_at is not None:
        prior = PriorUse(record.used_at, record.used_kiosk_name, record.used_scan_id)
    return facts, prior


def itinerary_window(itinerary_id: int, valid_from: datetime, valid_until: datetime) -> ItineraryWindow | None:
    """When an itinerary's tickets may pass; None (nobody passes) for a window that ends before it starts."""
    return ItineraryWindow(itinerary_id, valid_from, valid_until) if valid_from <= valid_until else None
