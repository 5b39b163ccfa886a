"""Driver share links: one gate ticket sent to a truck driver as a bearer link.

A link is a random token (only its hash is stored) that opens that one ticket without signing in: its
QR, its 20-digit code and its itinerary's window, nothing else of the company. It works until the
itinerary's gate window closes, the ticket is deleted, or a user of the ticket's company revokes it;
every open, and every refused open of a known link, goes to the audit log with the opener's address.
An open page checking whether its ticket changed is no open: it is neither counted nor audited, and is
answered the ticket's state alone (see ``share_views``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from server.accounts.audit import audit
from server.db import one, scalar
from server.i18n import Msg
from server.security import new_token, token_hash
from server.tickets import service as svc

#: Live links one ticket may have at once: enough for a driver, a relief driver and a dispatcher.
MAX_LIVE_LINKS = 10

_SELECT_LINK = (
    "SELECT l.id, l.ticket_id, l.company_id, l.created_at, l.revoked_at, l.open_count, l.last_opened_at, "
    "i.valid_until AS expires_at FROM ticket_share_links l JOIN tickets t ON t.id = l.ticket_id "
    "JOIN itineraries i ON i.id = t.itinerary_id"
)

#: A link as opening it needs it (by its token's hash or its id).
_SELECT_OPENED = "SELECT id, ticket_id, company_id, revoked_at FROM ticket_share_links"

#: A ticket as a phone shows it: its codes' inputs, its state, and its itinerary's names and gate window.
_SELECT_TICKET = (
    "SELECT t.id, t.itinerary_id, t.key_id, t.short_code, t.printed_at, t.used_at, t.deleted_at, "
    "i.vessel, i.voyage, i.valid_from, i.valid_until FROM tickets t JOIN itineraries i ON i.id = t.itinerary_id"
)


def ticket_for_phone(db: svc.Db, company_id: int, ticket_id: int) -> dict[str, Any] | None:
    """A ticket of ``company_id`` (deleted ones too: the phone must learn it) for the phone's screen."""
    return one(db, f"{_SELECT_TICKET} WHERE t.id = ? AND t.company_id = ?", (ticket_id, company_id))


@dataclass(frozen=True)
class OpenedLink:
    """What a share link shows: its ticket (with the itinerary's names and window), or why it is dead
    (``dead`` is ``revoked``, ``deleted`` or ``expired``; empty while the link works)."""

    link_id: int
    ticket: dict[str, Any]
    dead: str


def create_link(
    db: svc.Db, company_id: int, ticket_id: int, user_id: int | None, keys: svc.KeyRing | None, *, now: datetime
) -> tuple[dict[str, Any], str]:
    """A new link to a live ticket of ``company_id``; returns the link's row and its token (shown once).

    The driver shows the ticket's code at the gate, so the ticket is printed (as the print button does)
    if it was not yet; a used or deleted ticket, or one whose window is over, gets no link.
    """
    ticket = svc.print_ticket(db, company_id, ticket_id, user_id, keys, now=now)
    valid_until = scalar(db, "SELECT valid_until FROM itineraries WHERE id = ?", (ticket["itinerary_id"],))
    if svc.window_over(valid_until, now):
        raise svc.TicketError("expired", Msg("The gate window of this ticket's itinerary is over."))
    live = scalar(
        db, "SELECT COUNT(*) FROM ticket_share_links WHERE ticket_id = ? AND revoked_at IS NULL", (ticket_id,)
    )
    if live >= MAX_LIVE_LINKS:
        message = Msg("This ticket already has %(n)s live links; revoke one first.", {"n": MAX_LIVE_LINKS})
        raise svc.TicketError("too_many_links", message)
    token = new_token(24)
    link_id = scalar(
        db,
        "INSERT INTO ticket_share_links (ticket_id, company_id, token_hash, created_by, created_at) "
        "VALUES (?, ?, ?, ?, ?) RETURNING id",
        (ticket_id, company_id, token_hash(token), user_id, svc.stored_at(now)),
    )
    audit(db, "ticket.link_created", now=now, user_id=user_id, company_id=company_id, detail=f"{ticket_id} #{link_id}")
    link = one(db, f"{_SELECT_LINK} WHERE l.id = ?", (link_id,))
    assert link is not None  # inserted just above, in this transaction
    return {**link, "first_print": ticket["first_print"]}, token


def links_of(db: svc.Db, company_id: int, ticket_id: int) -> list[dict[str, Any]]:
    """The links of a ticket of ``company_id``, newest first (none for another company's ticket)."""
    return list(
        db.query(
            f"{_SELECT_LINK} WHERE l.ticket_id = ? AND l.company_id = ? ORDER BY l.id DESC", (ticket_id, company_id)
        )
    )


def revoke_link(
    db: svc.Db, company_id: int, ticket_id: int, link_id: int, user_id: int | None, *, now: datetime
) -> dict[str, Any]:
    """Revoke a link of a ticket of ``company_id`` (revoking it again changes nothing); not found otherwise."""
    link = one(
        db,
        f"{_SELECT_LINK} WHERE l.id = ? AND l.ticket_id = ? AND l.company_id = ?",
        (link_id, ticket_id, company_id),
    )
    if link is None:
        raise svc.TicketError("not_found", Msg("Not found."))
    if link["revoked_at"] is None:
        link["revoked_at"] = svc.stored_at(now)
        db.execute(
            "UPDATE ticket_share_links SET revoked_at = ?, revoked_by = ? WHERE id = ?",
            (link["revoked_at"], user_id, link_id),
        )
        audit(
            db, "ticket.link_revoked", now=now, user_id=user_id, company_id=company_id, detail=f"{ticket_id} #{link_id}"
        )
    return link


def find_link(db: svc.Db, token: str, *, now: datetime) -> OpenedLink | None:
    """What a link shows at ``now`` (its ticket, or why it is dead), neither counted nor audited; None for
    a token that is no link. A read: a made-up token never waits for the single writer, nor holds it."""
    link = one(db, f"{_SELECT_OPENED} WHERE token_hash = ?", (token_hash(token),))
    return None if link is None else _shown(db, link, now)


def open_link(db: svc.Db, link_id: int, address: str, *, now: datetime) -> OpenedLink:
    """Open a known link (found by :func:`find_link`): what it shows, with the open counted and audited.

    The link is read again in this transaction, so a revoke that came in between is what the driver
    sees and what the log says. A revoked link, a deleted ticket or a closed window answer with ``dead``
    set: audited too (a driver turned away, or someone trying an old link, shows in the log), so nothing
    is raised here, which would roll the audit row back.
    """
    link = one(db, f"{_SELECT_OPENED} WHERE id = ?", (link_id,))
    assert link is not None  # a link row is never removed (revoking marks it)
    opened = _shown(db, link, now)
    detail = f"{opened.ticket['id']} #{link_id}" + (f" {opened.dead}" if opened.dead else "")
    event = "ticket.link_refused" if opened.dead else "ticket.link_opened"
    audit(db, event, now=now, company_id=link["company_id"], detail=detail, address=address)
    if not opened.dead:
        db.execute(
            "UPDATE ticket_share_links SET open_count = open_count + 1, last_opened_at = ? WHERE id = ?",
            (svc.stored_at(now), link_id),
        )
    return opened


def _shown(db: svc.Db, link: dict[str, Any], now: datetime) -> OpenedLink:
    ticket = one(db, f"{_SELECT_TICKET} WHERE t.id = ?", (link["ticket_id"],))
    assert ticket is not None  # a link's ticket row is never removed (deleting a ticket marks it)
    return OpenedLink(link["id"], ticket, _dead_reason(link, ticket, now))


def _dead_reason(link: dict[str, Any], ticket: dict[str, Any], now: datetime) -> str:
    if link["revoked_at"]:
        return "revoked"
    if ticket["deleted_at"]:
        return "deleted"
    if svc.window_over(ticket["valid_until"], now):
        return "expired"
    return ""
