"""Replies by e-mail: an SMTP receiver (aiosmtpd) that files a customer's answer into the ticket thread.

Ticket mail says ``Reply-To: soporte+<token>@domain`` and ``[S_…]`` in the subject. A message is
accepted for a ticket when its recipient carries the ticket's token (or, failing that, its subject
carries the number) *and* its sender is the ticket's follow-up address or the customer user who
opened it, the opener's address only while the opener may still see the ticket's company
(``tickets.mail_author``). Quoted text of the earlier message is cut off; attachments go through the same checks
as uploads in the portal (refused ones are skipped, never stored).

The receiver runs on the application's own event loop (``inbound_ctx``), so it uses the app's
database and settings directly. MX/relay in front of it is the mail admin's business: it only
accepts recipients of the configured support address.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import html
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import getaddresses
from typing import TYPE_CHECKING, Any

from aiohttp import web

from server.helpdesk import attachments, tickets
from server.helpdesk.attachments import Upload
from server.helpdesk.settings import HELPDESK_SETTINGS, HelpdeskSettings
from server.web import DB

if TYPE_CHECKING:  # aiosmtpd is only needed when the receiver is switched on
    from aiosmtpd.smtp import SMTP, Envelope, Session

log = logging.getLogger(__name__)

TOKEN_RE = re.compile(r"^[0-9a-f]{24}$")
NUMBER_RE = re.compile(r"\[(S_\d{1,12}_\d{14})\]")
_QUOTE_INTRO = re.compile(
    r"^\s*(?:"
    r"on\b.{0,200}\bwrote:|el\b.{0,200}\bescribi[óo]:|"
    r"-{2,}\s*(?:original message|mensaje original)\s*-{2,}|"
    r"(?:from|de|sent|enviado(?: el)?):\s.+|_{8,})\s*$",
    re.IGNORECASE,
)


@dataclass
class ParsedReply:
    """What an inbound message says, before we know whether to accept it."""

    sender: str
    message_id: str | None
    token: str | None
    number: str | None
    body: str
    files: list[tuple[str, bytes]] = field(default_factory=list)


def strip_quoted(text: str) -> str:
    """The new part of a reply: stop at the quoted earlier message or the signature, drop ``>`` lines."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    for i, line in enumerate(lines):
        joined = line + " " + lines[i + 1] if i + 1 < len(lines) else line
        if _QUOTE_INTRO.match(line) or (re.match(r"^\s*(on|el)\s", line, re.IGNORECASE) and _QUOTE_INTRO.match(joined)):
            break
        if line.rstrip() == "--":
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line.rstrip())
    return "\n".join(kept).strip()


def _html_to_text(markup: str) -> str:
    markup = re.sub(r"(?is)<(script|style|blockquote)\b.*?</\1>", "", markup)
    markup = re.sub(r"(?i)<br\s*/?>|</p>|</div>", "\n", markup)
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def _addresses(message: EmailMessage, envelope_rcpts: list[str]) -> list[str]:
    headers = [str(v) for name in ("To", "Cc", "Delivered-To") for v in message.get_all(name, [])]
    return [a.lower() for a in envelope_rcpts] + [addr.lower() for _n, addr in getaddresses(headers) if addr]


def token_in(addresses: list[str], settings: HelpdeskSettings) -> str | None:
    """The ticket token of the first recipient of the form ``<support>+<token>@<domain>``."""
    local, _, domain = settings.inbound_address.partition("@")
    for address in addresses:
        box, _, host = address.partition("@")
        base, plus, token = box.partition("+")
        if plus and base == local and host == domain and TOKEN_RE.match(token):
            return token
    return None


def parse_message(raw: bytes, envelope_rcpts: list[str], settings: HelpdeskSettings) -> ParsedReply:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    senders = getaddresses([str(message.get("From", ""))])
    sender = senders[0][1].lower() if senders else ""
    subject = str(message.get("Subject", ""))
    number = NUMBER_RE.search(subject)
    body_part = message.get_body(preferencelist=("plain", "html"))
    text = ""
    if body_part is not None:
        try:
            text = body_part.get_content()
        except (LookupError, ValueError):
            payload = body_part.get_payload(decode=True)
            text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
        if body_part.get_content_type() == "text/html":
            text = _html_to_text(text)
    files = []
    for part in message.iter_attachments():
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            files.append((part.get_filename() or "", payload))
    message_id = str(message.get("Message-ID", "")).strip()[:300] or None
    return ParsedReply(
        sender=sender,
        message_id=message_id,
        token=token_in(_addresses(message, envelope_rcpts), settings),
        number=number[1] if number else None,
        body=strip_quoted(str(text))[:10_000],
        files=files,
    )


def acceptable_files(files: list[tuple[str, bytes]], settings: HelpdeskSettings) -> list[Upload]:
    """The attachments that pass the portal's checks (signature logos and the like may not)."""
    accepted: list[Upload] = []
    for name, data in files:
        checked = attachments.check_upload(name, data, settings)
        if isinstance(checked, Upload) and len(accepted) < settings.attachment_max_files:
            accepted.append(checked)
        else:
            log.info("inbound attachment skipped", extra={"file": name[:80]})
    return accepted


class InboundMailHandler:
    """aiosmtpd handler: accepts mail for the support address and files replies into tickets."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.settings: HelpdeskSettings = app[HELPDESK_SETTINGS]

    async def handle_RCPT(  # noqa: N802 - aiosmtpd hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        local, _, domain = self.settings.inbound_address.partition("@")
        box, _, host = address.lower().partition("@")
        if host != domain or box.partition("+")[0] != local:
            return "550 5.1.1 Not a helpdesk address"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        try:
            return await self.deliver(envelope.content or b"", list(envelope.rcpt_tos))
        except Exception:  # noqa: BLE001 - a crash must be a temporary failure, so the sender retries
            log.exception("inbound mail failed")
            return "451 4.3.0 Temporary failure; try again later"

    async def deliver(self, raw: bytes | str, rcpt_tos: list[str]) -> str:
        """File one message; answers the SMTP reply line (250 stored, 550 refused)."""
        raw = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else raw
        try:
            parsed = parse_message(raw, rcpt_tos, self.settings)
        except (IndexError, ValueError, LookupError, TypeError):
            # The standard parser gives up on some broken headers (``From: <``): retrying the same
            # bytes would fail the same way, so refuse for good instead of a temporary failure.
            log.warning("inbound mail refused: unreadable headers")
            return "550 5.6.0 Malformed message"
        db = self.app[DB]
        ticket = await db.read(tickets.ticket_for_mail, parsed.token, parsed.number)
        if ticket is None:
            return "550 5.1.1 No service ticket matches this message"
        author = await db.read(tickets.mail_author, ticket, parsed.sender)
        if author is None:
            log.warning("inbound mail from a sender not on the ticket", extra={"ticket": ticket["number"]})
            return "550 5.7.1 The sender may not write to this ticket"
        uploads = acceptable_files(parsed.files, self.settings)
        if not parsed.body and not uploads:
            return "550 5.6.0 The reply is empty"
        directory = self.settings.attachments_dir
        stored = await asyncio.to_thread(attachments.store, directory, uploads)
        try:
            await db.write(
                tickets.add_reply,
                None,
                ticket["id"],
                author,
                "customer",
                parsed.body or "—",
                stored,
                datetime.now(UTC),  # the mail server is an edge: it reads the clock
                via="email",
                message_id=parsed.message_id,
            )
        except tickets.HelpdeskError as exc:
            await asyncio.to_thread(attachments.remove, directory, [s.stored_name for s in stored])
            if exc.code == "duplicate_message":
                return "250 OK (already filed)"
            return f"550 5.7.1 {exc.message}"
        except BaseException:
            await asyncio.to_thread(attachments.remove, directory, [s.stored_name for s in stored])
            raise
        log.info("inbound reply filed", extra={"ticket": ticket["number"]})
        return "250 OK"


def _smtp_factory(handler: InboundMailHandler, settings: HelpdeskSettings) -> Any:
    from aiosmtpd.smtp import SMTP

    limit = settings.attachment_max_bytes * (settings.attachment_max_files + 1) + 1024 * 1024

    def make() -> SMTP:
        return SMTP(handler, data_size_limit=limit, hostname=settings.inbound_address.partition("@")[2], timeout=60)

    return make


async def inbound_ctx(app: web.Application) -> AsyncIterator[None]:
    """Listen for replies by e-mail when ``inbound_smtp_port`` is set; stop at shutdown."""
    settings = app[HELPDESK_SETTINGS]
    if not settings.inbound_smtp_port:
        yield
        return
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        _smtp_factory(InboundMailHandler(app), settings), settings.inbound_smtp_host, settings.inbound_smtp_port
    )
    log.info("helpdesk inbound SMTP listening", extra={"port": settings.inbound_smtp_port})
    yield
    server.close()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(server.wait_closed(), 5)
