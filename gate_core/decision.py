"""The one gate decision, shared by the server and the kiosks: pure, no I/O, no clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gate_core.codes import CodeStatus, ParsedCode
from gate_core.reasons import Reason


def _require_aware(name: str, value: datetime) -> None:
    # A naive datetime here is a programming error: comparing it with aware ones would either
    # raise deep inside decide() or, worse, silently shift a window by the kiosk's UTC offset.
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")


@dataclass(frozen=True)
class TicketFacts:
    """What the kiosk cache or the server database knows about a ticket."""

    ticket_id: int
    itinerary_id: int
    printed: bool
    deleted: bool
    company_name: str = ""
    itinerary_label: str = ""
    services: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "services", tuple(self.services))

    def to_dict(self) -> dict[str, Any]:
        return {
            "ticket_id": self.ticket_id,
            "itinerary_id": self.itinerary_id,
            "printed": self.printed,
            "deleted": self.deleted,
            "company_name": self.company_name,
            "itinerary_label": self.itinerary_label,
            "services": list(self.services),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TicketFacts:
        return cls(
            ticket_id=int(data["ticket_id"]),
            itinerary_id=int(data["itinerary_id"]),
            printed=bool(data["printed"]),
            deleted=bool(data["deleted"]),
            company_name=str(data.get("company_name", "")),
            itinerary_label=str(data.get("itinerary_label", "")),
            services=tuple(str(s) for s in data.get("services", ())),
        )


@dataclass(frozen=True)
class PriorUse:
    """The accepted scan that already used a ticket."""

    used_at: datetime
    kiosk_name: str
    scan_id: str

    def __post_init__(self) -> None:
        _require_aware("PriorUse.used_at", self.used_at)

    def to_dict(self) -> dict[str, Any]:
        return {
            "used_at": self.used_at.isoformat(),
            "kiosk_name": self.kiosk_name,
            "scan_id": self.scan_id,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PriorUse:
        return cls(
            used_at=datetime.fromisoformat(data["used_at"]),
            kiosk_name=str(data["kiosk_name"]),
            scan_id=str(data["scan_id"]),
        )


@dataclass(frozen=True)
class ItineraryWindow:
    """When an itinerary's tickets may pass the gate; both ends inclusive."""

    itinerary_id: int
    valid_from: datetime
    valid_until: datetime

    def __post_init__(self) -> None:
        _require_aware("ItineraryWindow.valid_from", self.valid_from)
        _require_aware("ItineraryWindow.valid_until", self.valid_until)
        if self.valid_from > self.valid_until:
            raise ValueError("ItineraryWindow.valid_from is after valid_until")

    def contains(self, moment: datetime) -> bool:
        return self.valid_from <= moment <= self.valid_until


@dataclass(frozen=True)
class GateConfig:
    """Per-kiosk settings that take part in the decision."""

    kiosk_revoked: bool = False
    allowed_itineraries: frozenset[int] | None = None  # None = every itinerary

    def __post_init__(self) -> None:
        if self.allowed_itineraries is not None:
            # Accept any set-like from settings but keep the config hashable and immutable.
            object.__setattr__(self, "allowed_itineraries", frozenset(self.allowed_itineraries))


@dataclass(frozen=True)
class Verdict:
    """The outcome of one scan: a stable reason and what was known when deciding."""

    accepted: bool
    reason: Reason
    ticket_id: int | None = None
    itinerary_id: int | None = None
    ticket: TicketFacts | None = None
    prior_use: PriorUse | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "reason", Reason(self.reason))
        if self.accepted != (self.reason is Reason.ACCEPTED):
            raise ValueError(f"accepted={self.accepted} contradicts reason {self.reason}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; datetimes as ISO-8601."""
        return {
            "accepted": self.accepted,
            "reason": self.reason.value,
            "ticket_id": self.ticket_id,
            "itinerary_id": self.itinerary_id,
            "ticket": self.ticket.to_dict() if self.ticket else None,
            "prior_use": self.prior_use.to_dict() if self.prior_use else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        ticket = data.get("ticket")
        prior_use = data.get("prior_use")
        return cls(
            accepted=bool(data["accepted"]),
            reason=Reason(data["reason"]),
            ticket_id=data.get("ticket_id"),
            itinerary_id=data.get("itinerary_id"),
            ticket=TicketFacts.from_dict(ticket) if ticket else None,
            prior_use=PriorUse.from_dict(prior_use) if prior_use else None,
        )


def _refuse(
    reason: Reason,
    code: ParsedCode | None = None,
    ticket: TicketFacts | None = None,
    prior_use: PriorUse | None = None,
) -> Verdict:
    return Verdict(
        accepted=False,
        reason=reason,
        ticket_id=code.ticket_id if code is not None else None,
        itinerary_id=code.itinerary_id if code is not None else None,
        ticket=ticket,
        prior_use=prior_use,
    )


def decide(
    code: ParsedCode,
    ticket: TicketFacts | None,
    prior_use: PriorUse | None,
    window: ItineraryWindow | None,
    now: datetime,
    gate: GateConfig,
) -> Verdict:
    """Accept or refuse one scan; the first failing check, in a fixed order, gives the reason.

    ``ticket``, ``prior_use`` and ``window`` are what the caller looked up for the code's
    ticket and itinerary (None when nothing was found). For a short code, look it up first and
    pass ``ParsedCode.from_short(...)`` or ``ParsedCode.unknown_short()``.
    """
    _require_aware("now", now)
    if code.valid and ticket is not None and ticket.ticket_id != code.ticket_id:
        raise ValueError(f"ticket {ticket.ticket_id} passed for a code of ticket {code.ticket_id}")
    if code.valid and window is not None and window.itinerary_id != code.itinerary_id:
        raise ValueError(f"window of itinerary {window.itinerary_id} passed for itinerary {code.itinerary_id}")

    if gate.kiosk_revoked:
        return _refuse(Reason.REVOKED_KIOSK)
    if code.status is CodeStatus.MALFORMED:
        return _refuse(Reason.MALFORMED)
    if code.status in (CodeStatus.BAD_SIGNATURE, CodeStatus.UNKNOWN_KEY):
        return _refuse(Reason.FORGED)
    if code.status is CodeStatus.NOT_FOUND:
        return _refuse(Reason.UNKNOWN)
    if gate.allowed_itineraries is not None and code.itinerary_id not in gate.allowed_itineraries:
        return _refuse(Reason.FOREIGN_ITINERARY, code)
    if ticket is None:
        return _refuse(Reason.UNKNOWN, code)
    if ticket.itinerary_id != code.itinerary_id:
        # A correctly signed code naming another itinerary than the ticket's: the signing key
        # or the database is compromised, so treat it as a forgery and show nothing of the ticket.
        return _refuse(Reason.FORGED, code)
    if ticket.deleted:
        return _refuse(Reason.DELETED, code, ticket=ticket)
    if not ticket.printed:
        return _refuse(Reason.NOT_PRINTED, code, ticket=ticket)
    if prior_use is not None:
        return _refuse(Reason.ALREADY_USED, code, ticket=ticket, prior_use=prior_use)
    if window is None or not window.contains(now):
        return _refuse(Reason.OUTSIDE_WINDOW, code, ticket=ticket)
    return Verdict(
        accepted=True,
        reason=Reason.ACCEPTED,
        ticket_id=code.ticket_id,
        itinerary_id=code.itinerary_id,
        ticket=ticket,
    )
