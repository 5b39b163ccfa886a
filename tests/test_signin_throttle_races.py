"""Wrong passwords sent at once to two nodes lock the account at the limit, as one after another would.

PostgreSQL only (SQLite's writes run one at a time). Each node has several writer threads, and
a sign-in counted its failure from the account's row read without a lock: concurrent guesses
all read the same count and each wrote it plus one, so the account never locked and a guesser
got as many tries as it could send at once. The decision reads the row locked now.
"""

from __future__ import annotations

import asyncio

import pytest

from server.app import create_app
from tests.conftest import with_security
from tests.dbaccess import db_rows
from tests.helpers import api_login

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

GUESSES = 12
LIMIT = 5


async def test_guesses_sent_at_once_to_two_nodes_lock_the_account_at_the_limit(config, aiohttp_client):
    from server.demo import install_demo

    config = with_security(config, login_max_failures_per_account=LIMIT, login_max_failures_per_address=100)
    first_app = create_app(config)
    first_app.on_startup.append(install_demo)
    nodes = [await aiohttp_client(first_app), await aiohttp_client(create_app(config))]

    answers = await asyncio.gather(*(api_login(nodes[n % 2], "pacifico", f"Adivina{n}2026") for n in range(GUESSES)))

    statuses = [answer.status for answer in answers]
    assert statuses.count(401) == LIMIT - 1, statuses  # wrong, wrong, …, then the guess that locks it
    assert statuses.count(429) == GUESSES - LIMIT + 1, statuses
    counted = db_rows(
        config,
        "SELECT COUNT(*) FROM audit_log a JOIN users u ON u.id = a.user_id "
        "WHERE u.username = 'pacifico' AND a.event IN ('login.failed', 'login.locked')",
    )
    assert counted == [(LIMIT,)]
    # Locked: even the right password is refused now.
    assert (await api_login(nodes[0], "pacifico")).status == 429
