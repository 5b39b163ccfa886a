"""Shared fixtures: a real SMTP server (aiosmtpd), real SQLite files in tmp dirs, the real app."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from server.app import create_app
from server.config import Config, MailConfig, SecurityConfig
from tests.mailbox import Mailbox, free_port


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
async def client(config, aiohttp_client):  # config (and its SMTP server) outlive the app
    """The real app on a loopback port with a fresh SQLite file and the demo accounts."""
    from server.demo import install_demo

    app = create_app(config)
    app.on_startup.append(install_demo)
    return await aiohttp_client(app)


def with_security(config: Config, **changes) -> Config:
    return replace(config, security=replace(config.security, **changes))


# Browser-test fixtures (real server process, module-wide SMTP, Chromium) live in tests/browser.py.
from tests.browser import browser_smtp, chromium, live_server, new_page  # noqa: E402, F401
