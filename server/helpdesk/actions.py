"""Ticket actions shared by the pages and the JSON API: check, store files, write, then e-mail.

Attachments are written to disk before the transaction that records them and removed again if that
transaction refuses or fails, so a refused request leaves neither a file nor a row behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from server.forms import FieldErrors, ValidationFailed
from server.helpdesk import attachments, notify, tickets
from server.helpdesk.attachments import StoredFile, Upload
from server.helpdesk.common import STAFF, now, ticket_scope
from server.helpdesk.settings import HELPDESK_SETTINGS
from server.web import DB, Principal, terminal_now


def _checked_files(app: web.Application, files: list[tuple[str, bytes]], errors: FieldErrors) -> list[Upload]:
    try:
        return attachments.check_uploads(files, app[HELPDESK_SETTINGS], "attachments")
    except ValidationFailed as exc:
        errors.update(exc.errors)
        return []


async def _write_with_files(app: web.Application, uploads: list[Upload], write: Any, *args: Any, **kwargs: Any) -> Any:
    """Store ``uploads``, then run the write function with them; undo the files if it raises."""
    directory = app[HELPDESK_SETTINGS].attachments_dir
    stored: list[StoredFile] = await asyncio.to_thread(attachments.store, directory, uploads) if uploads else []
    try:
        # A policy valid until today is valid all the terminal's day.
        return await app[DB].write(write, *args, stored, terminal_now(app), **kwargs)
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
    ticket = await _write_with_files(
        app, uploads, tickets.open_ticket, principal.company_id, author_of(principal), values
    )
    await notify.mail_ticket_opened(app, ticket)
    return ticket


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
    result = await _write_with_files(
        app,
        uploads,
        tickets.add_reply,
        ticket_scope(principal),
        ticket_id,
        author_of(principal),
        role,
        body,
        via=via,
    )
    if role == "agent":
        await notify.mail_agent_reply(app, result["ticket"], principal.full_name, body)
    return result


async def finish(app: web.Application, principal: Principal, ticket_id: int, status: str) -> dict[str, Any]:
    """Close or cancel; closing e-mails the customer an invitation to rate."""
    ticket = await app[DB].write(tickets.finish, ticket_id, principal.user_id, status, now())
    if status == "closed":
        await notify.mail_ticket_closed(app, ticket)
    return ticket
