"""Outgoing e-mail: SMTP through aiosmtplib, or .eml files in a folder for the demo."""

from __future__ import annotations

import logging
import time
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import aiosmtplib

from server.config import MailConfig

log = logging.getLogger(__name__)


class Mailer:
    def __init__(self, config: MailConfig, folder: Path) -> None:
        self._config = config
        self._folder = folder

    def build(self, to: str, subject: str, body: str, *, reply_to: str | None = None) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._config.sender
        message["To"] = to
        message["Subject"] = subject
        message["Message-ID"] = make_msgid(domain="portgate.local")
        if reply_to:
            message["Reply-To"] = reply_to
        message.set_content(body)
        return message

    async def send(self, to: str, subject: str, body: str, *, reply_to: str | None = None) -> None:
        """Send one message; failures are logged, never shown to the user as a crash."""
        message = self.build(to, subject, body, reply_to=reply_to)
        if self._config.backend == "folder":
            self._folder.mkdir(parents=True, exist_ok=True)
            name = f"{time.time():.6f}-{message['Message-ID'].strip('<>').split('@')[0]}.eml"
            (self._folder / name).write_bytes(bytes(message))
            log.info("mail written", extra={"to": to, "subject": subject, "file": name})
            return
        try:
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
        except (aiosmtplib.SMTPException, OSError) as exc:
            log.error("mail to %s failed: %s", to, exc)
