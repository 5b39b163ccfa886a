"""Service tickets ("Mis Tickets"): opening against a policy, the reply thread, the agent's actions, rating.

Customer-facing functions take the caller's ``company_id``; staff (helpdesk agents, admin) pass
``None`` and see every company's tickets. Every rule that refuses something raises
:class:`HelpdeskError` with a stable code before anything is written; each write function runs in
one transaction (see ``server.db``), so the simultaneous-ticket limit and the numbering hold under
concurrent requests.

Statuses: ``open`` → (agent replies) ``waiting_customer`` → (customer replies) ``open``; an agent
closes (``closed``) or cancels (``cancelled``); nothing changes a closed or cancelled ticket except
the customer's one rating of a closed one.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from gate_core.clock import utc_iso
from server import forms
from server.accounts.audit import audit
from server.db import lock_for_update, one, scalar
from server.forms import FieldErrors
from server.helpdesk.attachments import StoredFile
from server.helpdesk.paging import contains
from server.helpdesk.policies import get_policy
from server.i18n import Msg
from server.sql import Connection
from server.tickets.paging import FIRST_PAGE, PAGE_SIZE, Keyset, Page, keyset_page
from server.web import PORTAL_CUSTOMER_ROLES

Db = Connection

STATUSES = ("open", "waiting_customer", "closed", "cancelled")
OPEN_STATUSES = ("open", "waiting_customer")
#: Status code → text per language, looked up like the gate's reason texts (a short word such as
#: "Open" means something else in other screens' catalogs, so these are not gettext message ids).
STATUS_TEXT = {
    "open": {"es": "Abierto", "en": "Open"},
    "waiting_customer": {"es": "En espera del cliente", "en": "Waiting for the customer"},
    "closed": {"es": "Cerrado", "en": "Closed"},
    "cancelled": {"es": "Cancelado", "en": "Cancelled"},
}


class HelpdeskError(Exception):
    """A refused helpdesk action with a stable code; ``ticket`` is the one it refers to, if any."""

    def __init__(self, code: str, message: Msg, ticket: Mapping[str, Any] | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.message = message
        self.ticket = dict(ticket) if ticket else None


def ticket_number(seq: int, now: datetime) -> str:
    """The seed's shape ``S_<n>_<ddmmyyyyHHMMSS>``; ``n`` is a counter, so the number is unique.

    Stamped in ``now``'s own zone — callers pass the terminal's time — so the number reads like the
    "created" time shown beside it.
    """
    return f"S_{seq}_{now:%d%m%Y%H%M%S}"


def _open_marks() -> str:
    return ",".join(f"'{s}'" for s in OPEN_STATUSES)


# --- opening ----------------------------------------------------------------------------------


def validate_ticket(data: Mapping[str, Any], areas: Sequence[str]) -> dict[str, Any]:
    """Every field of the "generate ticket" form; one message per bad field."""
    errors = FieldErrors()
    values: dict[str, Any] = {
        "policy_id": forms.integer(data, "policy_id", errors, minimum=1, maximum=2**62),
        "area": forms.text(data, "area", errors, max_len=40),
        "subject": forms.text(data, "subject", errors, max_len=150),
        "email": forms.email(data, "email", errors),
        "phone": forms.phone(data, "phone", errors),
        "contact_hours": forms.text(data, "contact_hours", errors, max_len=120),
        "description": forms.text(data, "description", errors, max_len=5000, multiline=True),
    }
    if values["area"] and "area" not in errors and values["area"] not in areas:
        errors.add("area", Msg("Choose an area from the list."))
    forms.confirmation(data, "email_confirm", values["email"], errors, Msg("The e-mail addresses do not match."))
    forms.phone_confirmation(data, "phone_confirm", values["phone"], errors)
    errors.raise_if_any()
    return values


def open_ticket(
    db: Db,
    company_id: int,
    user: Mapping[str, Any],
    values: Mapping[str, Any],
    files: Sequence[StoredFile],
    now: datetime,
) -> dict[str, Any]:
    """Open a ticket against one of the company's policies, or refuse with the seed's reasons."""
    policy = _policy_open_to_tickets(db, company_id, values, now)
    db.execute("UPDATE service_ticket_counter SET value = value + 1 WHERE id = 1")
    seq = scalar(db, "SELECT value FROM service_ticket_counter WHERE id = 1")
    number = ticket_number(seq, now)
    ticket_id = _insert_ticket(db, seq, number, company_id, policy, user, values, now)
    _record_files(db, ticket_id, None, files, user["id"], now)
    audit(db, "service_ticket.opened", now=now, user_id=user["id"], company_id=company_id, detail=number)
    return get_ticket(db, company_id, ticket_id)  # type: ignore[return-value]


def _policy_open_to_tickets(db: Db, company_id: int, values: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The policy a new ticket names, or the refusal: not the company's, expired, suspended serial,
    an open ticket of the same system and e-mail, or the serial at its limit of open tickets."""
    policy = get_policy(db, company_id, values["policy_id"], now.date())
    if policy is None:
        raise HelpdeskError("not_found", Msg("Choose one of your policies."))
    if policy["expired"]:
        raise HelpdeskError(
            "policy_expired",
            Msg(
                "The policy %(number)s expired on %(date)s.",
                {"number": policy["number"], "date": policy["valid_until"]},
            ),
        )
    if policy["serial_status"] == "suspended":
        raise HelpdeskError(
            "serial_suspended",
            Msg("The serial %(serial)s is suspended; contact support.", {"serial": policy["serial"]}),
        )
    _refuse_a_second_open_ticket(db, company_id, policy, values["email"])
    return policy


def _refuse_a_second_open_ticket(db: Db, company_id: int, policy: Mapping[str, Any], email: str) -> None:
    # The serial's open tickets decide this one: on PostgreSQL, concurrent openings on one serial (other
    # writer threads, other nodes) wait here and then count what the one before them committed.
    lock_for_update(db, "SELECT id FROM serials WHERE id = ?", (policy["serial_id"],))
    existing = one(
        db,
        f"SELECT id, number FROM service_tickets WHERE company_id = ? AND system = ? AND email = ? "
        f"AND status IN ({_open_marks()}) ORDER BY id LIMIT 1",
        (company_id, policy["system"], email),
    )
    if existing:
        raise HelpdeskError(
            "open_ticket_exists",
            Msg(
                "You already have an open ticket for the requested system and e-mail; please check the list of tickets"
            ),
            existing,
        )
    open_count = scalar(
        db,
        f"SELECT COUNT(*) FROM service_tickets WHERE serial_id = ? AND status IN ({_open_marks()})",
        (policy["serial_id"],),
    )
    if open_count >= policy["max_open_tickets"]:
        raise HelpdeskError(
            "serial_ticket_limit",
            Msg(
                "The serial number: %(serial)s has reached the limit of tickets allowed, simultaneously",
                {"serial": policy["serial"]},
            ),
        )


def _insert_ticket(
    db: Db,
    seq: int,
    number: str,
    company_id: int,
    policy: Mapping[str, Any],
    user: Mapping[str, Any],
    values: Mapping[str, Any],
    now: datetime,
) -> int:
    """Store a new open ticket; returns its id."""
    ticket_id = db.execute(
        "INSERT INTO service_tickets (seq, number, company_id, policy_id, serial_id, system, area, subject, email, "
        "phone, contact_hours, description, status, language, reply_token, created_by, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?) RETURNING id",
        (
            seq,
            number,
            company_id,
            policy["id"],
            policy["serial_id"],
            policy["system"],
            values["area"],
            values["subject"],
            values["email"],
            values["phone"],
            values["contact_hours"],
            values["description"],
            user["language"] if user.get("language") in ("es", "en") else "es",
            secrets.token_hex(12),
            user["id"],
            utc_iso(now, "seconds"),
            utc_iso(now, "seconds"),
        ),
    ).fetchone()[0]
    return cast(int, ticket_id)


def _record_files(
    db: Db, ticket_id: int, reply_id: int | None, files: Sequence[StoredFile], user_id: int | None, now: datetime
) -> None:
    for f in files:
        db.execute(
            "INSERT INTO service_attachments (ticket_id, reply_id, stored_name, original_name, content_type, size, "
            "sha256, uploaded_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                ticket_id,
                reply_id,
                f.stored_name,
                f.upload.name,
                f.upload.content_type,
                f.upload.size,
                f.sha256,
                user_id,
                utc_iso(now, "seconds"),
            ),
        )


# --- reading ----------------------------------------------------------------------------------

_TICKET_SELECT = """
    SELECT t.id, t.number, t.company_id, c.name AS company_name, t.policy_id, p.number AS policy_number,
           p.description AS policy_description, p.valid_until AS policy_valid_until, t.serial_id, s.serial,
           t.system, t.area, t.subject, t.email, t.phone, t.contact_hours, t.description, t.status, t.language,
           t.reply_token, t.created_by, u.full_name AS created_by_name, u.email AS created_by_email,
           t.assigned_to, a.full_name AS assigned_name, t.created_at, t.updated_at, t.closed_at, t.rating,
           t.rating_comment, t.rated_at
    FROM service_tickets t JOIN companies c ON c.id = t.company_id JOIN policies p ON p.id = t.policy_id
    JOIN serials s ON s.id = t.serial_id JOIN users u ON u.id = t.created_by LEFT JOIN users a ON a.id = t.assigned_to
"""


def get_ticket(db: Db, company_id: int | None, ticket_id: int) -> dict[str, Any] | None:
    return one(
        db,
        _TICKET_SELECT + " WHERE t.id = ? AND (CAST(? AS BIGINT) IS NULL OR t.company_id = ?)",
        (ticket_id, company_id, company_id),
    )


def tickets_page(
    db: Db,
    company_id: int | None,
    *,
    area: str = "",
    status: str = "",
    search: str = "",
    at: Keyset = FIRST_PAGE,
    limit: int = PAGE_SIZE,
) -> Page:
    """Tickets newest first, one keyset page; ``status`` may be one status or ``active`` (open or waiting)."""
    statuses = OPEN_STATUSES if status == "active" else (status,) if status in STATUSES else STATUSES
    conditions = [f"t.status IN ({','.join('?' * len(statuses))})"]
    params: list[Any] = [*statuses]
    if company_id is not None:
        conditions.append("t.company_id = ?")
        params.append(company_id)
    if area:
        conditions.append("t.area = ?")
        params.append(area)
    if search:
        condition, values = contains(("t.number", "t.subject", "t.system", "c.name"), search)
        conditions.append(condition)
        params += values
    return keyset_page(db, _TICKET_SELECT, conditions, params, at, id_column="t.id", limit=limit)


def queue_counts(db: Db) -> dict[str, int]:
    """Open (or waiting) tickets per area, for the agent console's tabs."""
    return {
        row[0]: row[1]
        for row in db.execute(
            f"SELECT area, COUNT(*) FROM service_tickets WHERE status IN ({_open_marks()}) GROUP BY area"
        ).fetchall()
    }


def thread(db: Db, ticket_id: int) -> dict[str, Any]:
    """The replies of a ticket in order, each with its attachments, plus the opening's attachments."""
    replies = list(
        db.query(
            "SELECT id, author_role, user_id, author_name, body, via, created_at FROM service_replies "
            "WHERE ticket_id = ? ORDER BY id",
            (ticket_id,),
        )
    )
    files = list(
        db.query(
            "SELECT id, reply_id, original_name, content_type, size, created_at FROM service_attachments "
            "WHERE ticket_id = ? ORDER BY id",
            (ticket_id,),
        )
    )
    by_reply: dict[int | None, list[dict[str, Any]]] = {}
    for f in files:
        by_reply.setdefault(f["reply_id"], []).append(f)
    for reply in replies:
        reply["attachments"] = by_reply.get(reply["id"], [])
    return {"replies": replies, "attachments": by_reply.get(None, [])}


def get_attachment(db: Db, company_id: int | None, attachment_id: int) -> dict[str, Any] | None:
    """An attachment, only if its ticket is visible to the caller."""
    return one(
        db,
        "SELECT f.id, f.ticket_id, f.stored_name, f.original_name, f.content_type, f.size FROM service_attachments f "
        "JOIN service_tickets t ON t.id = f.ticket_id "
        "WHERE f.id = ? AND (CAST(? AS BIGINT) IS NULL OR t.company_id = ?)",
        (attachment_id, company_id, company_id),
    )


# --- the thread and the agent's actions -------------------------------------------------------


def validate_reply(data: Mapping[str, Any]) -> str:
    errors = FieldErrors()
    body = forms.text(data, "body", errors, max_len=10_000, multiline=True)
    errors.raise_if_any()
    return body


def _ticket_for_update(db: Db, company_id: int | None, ticket_id: int) -> dict[str, Any]:
    lock_for_update(db, "SELECT id FROM service_tickets WHERE id = ?", (ticket_id,))  # its status decides the change
    ticket = get_ticket(db, company_id, ticket_id)
    if ticket is None:
        raise HelpdeskError("not_found", Msg("Not found."))
    return ticket


def _refuse_if_finished(ticket: Mapping[str, Any]) -> None:
    if ticket["status"] == "closed":
        raise HelpdeskError(
            "ticket_closed",
            Msg("The ticket %(number)s is closed; it can no longer be changed.", {"number": ticket["number"]}),
        )
    if ticket["status"] == "cancelled":
        raise HelpdeskError(
            "ticket_cancelled",
            Msg("The ticket %(number)s is cancelled; it can no longer be changed.", {"number": ticket["number"]}),
        )


def add_reply(
    db: Db,
    company_id: int | None,
    ticket_id: int,
    author: Mapping[str, Any],
    role: str,
    body: str,
    files: Sequence[StoredFile],
    now: datetime,
    *,
    via: str = "web",
    message_id: str | None = None,
) -> dict[str, Any]:
    """Add a customer's or an agent's reply; an agent's waits for the customer, a customer's reopens."""
    ticket = _ticket_for_update(db, company_id, ticket_id)
    _refuse_if_finished(ticket)
    if message_id and scalar(db, "SELECT 1 FROM service_replies WHERE message_id = ?", (message_id,)):
        raise HelpdeskError("duplicate_message", Msg("This message was already added to the ticket."))
    reply_id = db.execute(
        "INSERT INTO service_replies (ticket_id, author_role, user_id, author_name, body, via, message_id, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (ticket_id, role, author.get("id"), author["full_name"], body, via, message_id, utc_iso(now, "seconds")),
    ).fetchone()[0]
    _record_files(db, ticket_id, reply_id, files, author.get("id"), now)
    status = "waiting_customer" if role == "agent" else "open"
    db.execute(
        "UPDATE service_tickets SET status = ?, updated_at = ?, assigned_to = CASE WHEN ? = 'agent' "
        "THEN COALESCE(assigned_to, ?) ELSE assigned_to END WHERE id = ?",
        (status, utc_iso(now, "seconds"), role, author.get("id"), ticket_id),
    )
    audit(
        db,
        f"service_ticket.reply_{role}",
        now=now,
        user_id=author.get("id"),
        company_id=ticket["company_id"],
        detail=ticket["number"],
    )
    return {"ticket": get_ticket(db, None, ticket_id), "reply_id": reply_id}


def assign_to(db: Db, ticket_id: int, agent_id: int, now: datetime) -> dict[str, Any]:
    """The agent takes the ticket (also from a colleague)."""
    ticket = _ticket_for_update(db, None, ticket_id)
    _refuse_if_finished(ticket)
    db.execute(
        "UPDATE service_tickets SET assigned_to = ?, updated_at = ? WHERE id = ?",
        (agent_id, utc_iso(now, "seconds"), ticket_id),
    )
    audit(
        db,
        "service_ticket.assigned",
        now=now,
        user_id=agent_id,
        company_id=ticket["company_id"],
        detail=ticket["number"],
    )
    return get_ticket(db, None, ticket_id)  # type: ignore[return-value]


def finish(db: Db, ticket_id: int, agent_id: int, status: str, now: datetime) -> dict[str, Any]:
    """Close (solved) or cancel a ticket that is still open or waiting."""
    if status not in ("closed", "cancelled"):
        raise ValueError(status)
    ticket = _ticket_for_update(db, None, ticket_id)
    _refuse_if_finished(ticket)
    db.execute(
        "UPDATE service_tickets SET status = ?, closed_at = ?, updated_at = ?, assigned_to = COALESCE(assigned_to, ?) "
        "WHERE id = ?",
        (status, utc_iso(now, "seconds"), utc_iso(now, "seconds"), agent_id, ticket_id),
    )
    audit(
        db,
        f"service_ticket.{status}",
        now=now,
        user_id=agent_id,
        company_id=ticket["company_id"],
        detail=ticket["number"],
    )
    return get_ticket(db, None, ticket_id)  # type: ignore[return-value]


def validate_rating(data: Mapping[str, Any]) -> dict[str, Any]:
    errors = FieldErrors()
    values = {
        "rating": forms.integer(data, "rating", errors, minimum=1, maximum=5),
        "comment": forms.text(data, "comment", errors, max_len=2000, required=False, multiline=True),
    }
    errors.raise_if_any()
    return values


def rate(
    db: Db, company_id: int, ticket_id: int, values: Mapping[str, Any], user_id: int, now: datetime
) -> dict[str, Any]:
    """The customer's one rating (1–5 and a comment) of a closed ticket."""
    ticket = _ticket_for_update(db, company_id, ticket_id)
    if ticket["status"] != "closed":
        raise HelpdeskError("not_closed", Msg("Only a closed ticket can be rated."))
    if ticket["rating"] is not None:
        raise HelpdeskError("already_rated", Msg("This ticket has already been rated."))
    db.execute(
        "UPDATE service_tickets SET rating = ?, rating_comment = ?, rated_at = ? WHERE id = ? AND rating IS NULL",
        (values["rating"], values["comment"], utc_iso(now, "seconds"), ticket_id),
    )
    audit(
        db,
        "service_ticket.rated",
        now=now,
        user_id=user_id,
        company_id=company_id,
        detail=f"{ticket['number']} {values['rating']}",
    )
    return get_ticket(db, company_id, ticket_id)  # type: ignore[return-value]


# --- replies by e-mail ------------------------------------------------------------------------


def ticket_for_mail(db: Db, token: str | None, number: str | None) -> dict[str, Any] | None:
    """The ticket an inbound message refers to: by its address token, else by the number in its subject."""
    if token:
        row = one(db, _TICKET_SELECT + " WHERE t.reply_token = ?", (token,))
        if row:
            return row
    if number:
        return one(db, _TICKET_SELECT + " WHERE t.number = ?", (number,))
    return None


def mail_author(db: Db, ticket: Mapping[str, Any], sender: str) -> dict[str, Any] | None:
    """Who an e-mailed reply is from, if the sender may write to this ticket: its follow-up address,
    or the customer user who opened it.

    The opener's own address counts only while the opener may still see the ticket's company
    (active, with a profile there, or staff): a user removed from the company cannot go on
    writing into its tickets by e-mail, even when their address is the follow-up address.
    """
    sender = sender.strip().lower()
    if not sender:
        return None
    if sender == str(ticket["created_by_email"]).lower():
        customer_roles = ",".join("?" * len(PORTAL_CUSTOMER_ROLES))  # any other role is staff
        opener_may = scalar(
            db,
            "SELECT 1 FROM users u WHERE u.id = ? AND u.status = 'active' AND EXISTS (SELECT 1 FROM profiles p "
            f"WHERE p.user_id = u.id AND (p.company_id = ? OR p.role NOT IN ({customer_roles})))",
            (ticket["created_by"], ticket["company_id"], *PORTAL_CUSTOMER_ROLES),
        )
        return {"id": ticket["created_by"], "full_name": ticket["created_by_name"]} if opener_may else None
    if sender == str(ticket["email"]).lower():
        return {"id": None, "full_name": sender}
    return None
