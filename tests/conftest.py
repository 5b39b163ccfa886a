"""Shared fixtures: a real SMTP server (aiosmtpd), real SQLite files in tmp dirs, the real app."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
import time
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from server.app import create_app
from server.config import Config, MailConfig, SecurityConfig


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


@pytest.fixture
def smtp():
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    mailbox.port = port
    yield mailbox
    controller.stop()


@pytest.fixture
def config(tmp_path: Path, smtp: Mailbox) -> Config:
    return Config(
        data_dir=str(tmp_path / "data"),
        support_email="soporte@terminal.example",
        mail=MailConfig(backend="smtp", host="127.0.0.1", port=smtp.port),
        security=SecurityConfig(secret_key="test-secret"),
    )


@pytest.fixture
async def client(aiohttp_client, config):
    """The real app on a loopback port with a fresh SQLite file and the demo accounts."""
    from server.demo import install_demo

    app = create_app(config)
    app.on_startup.append(install_demo)
    return await aiohttp_client(app)


def with_security(config: Config, **changes) -> Config:
    return replace(config, security=replace(config.security, **changes))
