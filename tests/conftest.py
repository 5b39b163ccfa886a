"""Shared fixtures: a real SMTP server (aiosmtpd), a real database on both engines, the real app.

Every test that takes ``config`` runs twice: on a SQLite file in its tmp dir (``[sqlite]``) and on
a fresh PostgreSQL database (``[postgresql]``), a copy of a migrated template in a throwaway
cluster started once per test process (``tests/pgcluster.py``). A test about one engine's own
behaviour names it, with its reason beside: ``@pytest.mark.parametrize("database_url", ["sqlite"],
indirect=True)``.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import replace
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from server.app import create_app
from server.config import Config, MailConfig, SecurityConfig
from server.db import Database
from tests import pgcluster
from tests.mailbox import Mailbox, free_port

ENGINES = ("sqlite", "postgresql")
TEMPLATE = "portgate_template"
_databases = itertools.count(1)


@pytest.fixture(scope="session")
def pg_cluster():
    """A throwaway PostgreSQL cluster for this test process, with a migrated template database."""
    if not pgcluster.available():
        pytest.skip("PostgreSQL is not installed (./portgate.sh test installs it)")
    cluster = pgcluster.PgCluster.start()
    try:
        database = Database(cluster.create_database(TEMPLATE), readers=1, pool_size=2)
        try:
            database.migrate()
        finally:
            database.close()
        yield cluster
    finally:
        cluster.stop()


def fresh_database(cluster: pgcluster.PgCluster) -> tuple[str, str]:
    """A new database copied from the migrated template: (name, URL)."""
    name = f"t{os.getpid()}_{next(_databases)}"
    return name, cluster.create_database(name, template=TEMPLATE)


@pytest.fixture(params=ENGINES)
def database_url(request):
    """``""`` (the SQLite file under ``data_dir``) or the URL of a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield ""
        return
    cluster = request.getfixturevalue("pg_cluster")
    name, url = fresh_database(cluster)
    yield url
    cluster.drop_database(name)


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
def config(tmp_path: Path, smtp: Mailbox, database_url: str) -> Config:
    return Config(
        data_dir=str(tmp_path / "data"),
        database_url=database_url,
        support_email="soporte@terminal.example",
        mail=MailConfig(backend="smtp", host="127.0.0.1", port=smtp.port),
        security=SecurityConfig(secret_key="test-secret"),
    )


@pytest.fixture
async def client(config, aiohttp_client):  # config (and its SMTP server) outlive the app
    """The real app on a loopback port with a fresh database and the demo accounts."""
    from server.demo import install_demo

    app = create_app(config)
    app.on_startup.append(install_demo)
    return await aiohttp_client(app)


def with_security(config: Config, **changes) -> Config:
    return replace(config, security=replace(config.security, **changes))


# Browser-test fixtures (real server process, module-wide SMTP, Chromium) live in tests/browser.py.
from tests.browser import browser_smtp, chromium, live_database_url, live_server, new_page  # noqa: E402, F401
