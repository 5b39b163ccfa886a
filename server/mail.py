"""Outgoing e-mail: built header-safe, queued in the mail outbox, delivered by SMTP (aiosmtplib)
or as .eml files in a folder (the demo).

A change that causes a mail queues it in its own transaction (``server.mail_outbox.write_with_mail``):
the change and its mail are kept or dropped together, and a mail server that is down or slow never
fails the change. The outbox's delivery job hands each message to :meth:`Mailer.deliver`, retrying
with backoff.
"""

from __future__ import annotations

import logging
import time
import unicodedata
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import aiosmtplib

from server.config import MailConfig

log = logging.getLogger(__name__)

#: What a delivery attempt may raise when the mail server (or the mail folder) fails us.
DELIVERY_ERRORS = (aiosmtplib.SMTPException, OSError)

#: Unicode categories that end or break a header line: controls (CR, LF, NEL…), the line and
#: paragraph separators (U+2028, U+2029: Python's e-mail package splits lines at them), and lone
#: surrogates (which cannot be encoded at all).
_UNSAFE_IN_HEADER = frozenset({"Cc", "Cs", "Zl", "Zp"})


def header_safe(value: str) -> str:
    """``value`` on one line: every line-break-like or control character becomes a space."""
    if value.isascii() and value.isprintable():
        return value
    return "".join(" " if unicodedata.category(ch) in _UNSAFE_IN_HEADER else ch for ch in value)


@dataclass(frozen=True)
class Mail:
    """One message to send: its text already in the recipient's language."""

    to: str
    subject: str
    body: str
    reply_to: str | None = None


class Mailer:
    def __init__(self, config: MailConfig, folder: Path) -> None:
        self._config = config
        self._folder = folder

    def build(self, to: str, subject: str, body: str, *, reply_to: str | None = None) -> EmailMessage:
        """The message, every header value on one line whatever the subject or names contain."""
        headers = {
            "From": self._config.sender,
            "To": to,
            "Subject": subject,
            "Message-ID": make_msgid(domain="portgate.local"),
            "Reply-To": reply_to,
        }
        message = EmailMessage()
        for name, value in headers.items():
            if value:
                message[name] = header_safe(value)
        message.set_content(body)
        return message

    async def deliver(self, message: EmailMessage) -> None:
        """Hand one message to the configured backend; raises one of ``DELIVERY_ERRORS`` on failure."""
        to, subject = message["To"], message["Subject"]
        if self._config.backend == "folder":
            self._folder.mkdir(parents=True, exist_ok=True)
            name = f"{time.time():.6f}-{message['Message-ID'].strip('<>').split('@')[0]}.eml"
            (self._folder / name).write_bytes(bytes(message))
            log.info("mail written", extra={"to": to, "subject": subject, "file": name})
            return
        await aiosmtplib.send(
            message,
            hostname=self._config.host,
            port=self._config.port,
            username=self._config.username or None,
            password=self._config.password or None,
            start_tls=self._config.starttls,
            timeout=15,
        )
        log.info("mail sent", extra={"to": to, "subject": subject})
