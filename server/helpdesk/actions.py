"""Ticket actions shared by the pages and the JSON API: check, store files, write and queue the e-mail.

Attachments are written to disk before the transaction that records them and removed again if that
transaction refuses or fails, so a refused request leaves neither a file nor a row behind.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from server.forms import FieldErrors, ValidationFailed
from server.helpdesk import attachments, notify, tickets
from server.helpdesk.attachments import StoredFile, Upload
from server.helpdesk.common import STAFF, now, ticket_scope
from server.helpdesk.settings import HELPDESK_SETTINGS
from server.mail import Mail
from server.mail_outbox import write_with_mail
from server.web import Principal, terminal_now


def _checked_files(app: web.Application, files: list[tuple[str, bytes]], errors: FieldErrors) -> list[Upload]:
    try:
        return attachments.check_uploads(files, app[HELPDESK_SETTINGS], "attachments")
    except ValidationFailed as exc:
        errors.update(exc.errors)
        return []


async def _write_with_files(
    app: web.Application, uploads: list[Upload], write: Any, *args: Any, mail: Callable[[Any], list[Mail]]
) -> Any:
    """Store ``uploads``, then run the write function with them, queuing its ``mail``; undo the files if it raises."""
    directory = app[HELPDESK_SETTINGS].attachments_dir
    stored: list[StoredFile] = await asyncio.to_thread(attachments.store, directory, uploads) if uploads else []
    try:
        # A policy valid until today is valid all the terminal's day.
        return await write_with_mail(app, write, *args, stored, terminal_now(app), mail=mail)
    except BaseException:
        if stored:
            await asyncio.to_thread(attachments.remove, directory, [s.stored_name for s in stored])
        raise


def author_of(principal: Principal) -> dict[str, Any]:
    return {"id": principal.user_id, "full_name": principal.full_name, "language": principal.language}


async def create_ticket(
    app: web.Application, principal: Principal, data: Mapping[str, Any], files: list[tuple[str, bytes]]
) -> dict[str, Any]:
    """Open a ticket for the principal's company; e-mails the follow-up address."""
    errors = FieldErrors()
    try:
        values = tickets.validate_ticket(data, app[HELPDESK_SETTINGS].areas)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    uploads = _checked_files(app, files, errors)
    errors.raise_if_any()
    return await _write_with_files(
        app,
        uploads,
        tickets.open_ticket,
        principal.company_id,
        author_of(principal),
        values,
        mail=lambda ticket: [notify.ticket_opened_mail(app, ticket)],
    )


async def reply(
    app: web.Application,
    principal: Principal,
    ticket_id: int,
    data: Mapping[str, Any],
    files: list[tuple[str, bytes]],
    *,
    via: str,
) -> dict[str, Any]:
    """A reply by the customer or by an agent; an agent's is e-mailed to the follow-up address."""
    errors = FieldErrors()
    try:
        body = tickets.validate_reply(data)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    uploads = _checked_files(app, files, errors)
    errors.raise_if_any()
    role = "agent" if principal.role in STAFF else "customer"

    def mail(result: dict[str, Any]) -> list[Mail]:
        return [notify.agent_reply_mail(app, result["ticket"], principal.full_name, body)] if role == "agent" else []

    return await _write_with_files(
        app,
        uploads,
        functools.partial(tickets.add_reply, via=via),
        ticket_scope(principal),
        ticket_id,
        author_of(principal),
        role,
        body,
        mail=mail,
    )


async def finish(app: web.Application, principal: Principal, ticket_id: int, status: str) -> dict[str, Any]:
    """Close or cancel; closing e-mails the customer an invitation to rate."""
    return await write_with_mail(
        app,
        tickets.finish,
        ticket_id,
        principal.user_id,
        status,
        now(),
        mail=lambda ticket: [notify.ticket_closed_mail(app, ticket)] if status == "closed" else [],
    )
