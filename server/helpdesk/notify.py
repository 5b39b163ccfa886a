"""E-mails about a service ticket: opened, each agent reply, closed.

Each message goes to the ticket's follow-up address in the ticket's language, with the number in
brackets in the subject and ``Reply-To: <support>+<token>@…``, so the customer's reply by e-mail
lands in the thread (see ``server.helpdesk.inbound``). Each is composed inside the transaction of
the change it tells of and queued there (``server.mail_outbox.write_with_mail``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from server.helpdesk.settings import AREA_LABELS, HELPDESK_SETTINGS
from server.i18n import N_, translate
from server.mail import Mail
from server.web import CONFIG


def area_label(lang: str, area: str) -> str:
    return translate(lang, AREA_LABELS[area]) if area in AREA_LABELS else area


def _mail(app: web.Application, ticket: Mapping[str, Any], subject: str, body: str, extra: dict[str, Any]) -> Mail:
    lang = ticket["language"]
    params = {
        "number": ticket["number"],
        "subject": ticket["subject"],
        "system": ticket["system"],
        "area": area_label(lang, ticket["area"]),
        "link": f"{app[CONFIG].public_url}/helpdesk/tickets/{ticket['id']}",
        **extra,
    }
    footer = ""
    if ticket["status"] in ("open", "waiting_customer"):
        footer = "\n\n" + translate(lang, N_("To add to the ticket, reply to this message or use the link above."))
    return Mail(
        ticket["email"],
        f"[{ticket['number']}] " + translate(lang, subject) % params,
        translate(lang, body) % params + footer,
        reply_to=app[HELPDESK_SETTINGS].reply_address(ticket["reply_token"]),
    )


def ticket_opened_mail(app: web.Application, ticket: Mapping[str, Any]) -> Mail:
    return _mail(
        app,
        ticket,
        N_("Portgate: service ticket received: %(subject)s"),
        N_(
            "Hello,\n\nWe received your service ticket %(number)s for %(system)s (%(area)s): %(subject)s\n"
            "An agent will contact you. Follow it here:\n%(link)s"
        ),
        {},
    )


def agent_reply_mail(app: web.Application, ticket: Mapping[str, Any], author: str, body: str) -> Mail:
    return _mail(
        app,
        ticket,
        N_("Portgate: new reply to your service ticket: %(subject)s"),
        N_(
            "Hello,\n\n%(author)s replied to your service ticket %(number)s:\n\n%(body)s\n\n"
            "See the whole thread: %(link)s"
        ),
        {"author": author, "body": body},
    )


def ticket_closed_mail(app: web.Application, ticket: Mapping[str, Any]) -> Mail:
    return _mail(
        app,
        ticket,
        N_("Portgate: your service ticket was closed: %(subject)s"),
        N_(
            "Hello,\n\nYour service ticket %(number)s has been closed. Please rate the attention you received "
            "(1 to 5 stars) here:\n%(link)s"
        ),
        {},
    )
