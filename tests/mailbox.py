"""A real SMTP inbox for tests (aiosmtpd calls ``handle_DATA``) and a free loopback port."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
import time
from email.message import EmailMessage


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
