"""A real SMTP inbox for tests (aiosmtpd calls ``handle_DATA``), a free loopback port, and waits
on the app's mail outbox (mail is delivered by a background job, after the request answered)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

from tests.dbaccess import open_db


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Mailbox:
    """Collects every message the SMTP server receives."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self._cond = threading.Condition()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd hook name
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._cond:
            self.messages.append(message)
            self._cond.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, to: str, subject_part: str = "", timeout: float = 10.0) -> EmailMessage:
        """The first message to ``to`` whose subject contains ``subject_part`` (waits for it)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for message in self.messages:
                    if to.lower() in str(message["To"]).lower() and subject_part in str(message["Subject"]):
                        return message
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"no mail to {to} with {subject_part!r}; got {[(m['To'], m['Subject']) for m in self.messages]}"
                    )
                self._cond.wait(remaining)

    def to(self, address: str) -> list[EmailMessage]:
        with self._cond:
            return [m for m in self.messages if address.lower() in str(m["To"]).lower()]


def outbox(config) -> list[dict[str, Any]]:
    """The app's undelivered mail (``mail_outbox`` rows), oldest first."""
    with open_db(config) as db:
        return list(db.query("SELECT * FROM mail_outbox ORDER BY id"))


async def wait_for_outbox(
    config, check: Callable[[list[dict[str, Any]]], bool], what: str, timeout: float = 10.0
) -> list[dict[str, Any]]:
    """The outbox once ``check(rows)`` holds (the app's delivery job runs meanwhile)."""
    deadline = time.monotonic() + timeout
    while not check(rows := outbox(config)):
        if time.monotonic() > deadline:
            raise AssertionError(f"outbox never showed {what}; it holds {rows}")
        await asyncio.sleep(0.05)
    return rows


async def wait_until_delivered(config, timeout: float = 10.0) -> None:
    """Every queued mail has reached the mail server (or the mail folder)."""
    await wait_for_outbox(config, lambda rows: not rows, "every mail delivered", timeout)
