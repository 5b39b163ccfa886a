"""Stable reason codes for gate verdicts, the camera's advice to a driver, and their gate-screen text."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why a scan was accepted or refused; stored, sent over the API and asserted by tests."""

    ACCEPTED = "accepted"
    MALFORMED = "malformed"
    FORGED = "forged"
    UNKNOWN = "unknown"
    NOT_PRINTED = "not_printed"
    DELETED = "deleted"
    ALREADY_USED = "already_used"
    OUTSIDE_WINDOW = "outside_window"
    FOREIGN_ITINERARY = "foreign_itinerary"
    REVOKED_KIOSK = "revoked_kiosk"
    # The kiosk's own, never decide()'s: a scan it could not save (a full or failing disk) could
    # never be reported, so its local word does not let the truck through.
    STORAGE_FAULT = "storage_fault"


#: The reasons the rules give (decide() on either side); what the server stores and filters by.
DECISION_REASONS = tuple(r for r in Reason if r is not Reason.STORAGE_FAULT)


DEFAULT_LANG = "es"

# Short enough for a big verdict screen; for already_used the screen adds when and where itself.
REASON_TEXT: dict[Reason, dict[str, str]] = {
    Reason.ACCEPTED: {"es": "Ticket válido", "en": "Valid ticket"},
    Reason.MALFORMED: {"es": "Código ilegible", "en": "Unreadable code"},
    Reason.FORGED: {"es": "Código falso o alterado", "en": "Forged or altered code"},
    Reason.UNKNOWN: {"es": "Ticket no encontrado", "en": "Ticket not found"},
    Reason.NOT_PRINTED: {"es": "Ticket no impreso", "en": "Ticket not printed"},
    Reason.DELETED: {"es": "Ticket eliminado", "en": "Ticket deleted"},
    Reason.ALREADY_USED: {"es": "Ticket ya usado", "en": "Ticket already used"},
    Reason.OUTSIDE_WINDOW: {
        "es": "Fuera de la vigencia del itinerario",
        "en": "Outside the itinerary's validity",
    },
    Reason.FOREIGN_ITINERARY: {
        "es": "Itinerario no admitido en esta puerta",
        "en": "Itinerary not allowed at this gate",
    },
    Reason.REVOKED_KIOSK: {"es": "Quiosco dado de baja", "en": "Kiosk revoked"},
    Reason.STORAGE_FAULT: {
        "es": "Este kiosco no puede guardar escaneos: no deje pasar el camión por aquí y avise al supervisor.",
        "en": "This kiosk cannot save scans: do not let the truck through here; call the supervisor.",
    },
}


def reason_text(reason: Reason | str, lang: str = DEFAULT_LANG) -> str:
    """Gate-screen text for a reason; unknown languages (and regions like "en-US") fall back."""
    return in_language(REASON_TEXT[Reason(reason)], lang)


def in_language(texts: dict[str, str], lang: str = DEFAULT_LANG) -> str:
    """The text of ``texts`` (by language) in ``lang``: its primary language ("en" of "en-US"), else the default."""
    primary = lang.split("-")[0].split("_")[0].lower() if lang else DEFAULT_LANG
    return texts.get(primary, texts[DEFAULT_LANG])


class Advice(StrEnum):
    """What the lane screen asks of a driver whose ticket the camera sees but cannot read
    (gate_agent.scanner.advice says when each is given)."""

    GLARE = "glare"  # a lamp's reflection burns out the code: tilt the ticket
    UNCLEAR = "unclear"  # anything else: hold it flat and still


ADVICE_TEXT: dict[Advice, dict[str, str]] = {
    Advice.GLARE: {
        "es": "Hay un reflejo sobre el código: incline un poco el ticket",
        "en": "There is a glare on the code: tilt the ticket a little",
    },
    Advice.UNCLEAR: {
        "es": "Sostenga el ticket plano y quieto frente a la cámara",
        "en": "Hold the ticket flat and still in front of the camera",
    },
}


def advice_text(advice: Advice | str, lang: str = DEFAULT_LANG) -> str:
    """Gate-screen text for the camera's advice, in the kiosk's language."""
    return in_language(ADVICE_TEXT[Advice(advice)], lang)
