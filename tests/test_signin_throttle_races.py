"""Wrong passwords sent at once to two nodes lock the account at the limit, as one after another would.

PostgreSQL only (SQLite's writes run one at a time). Each node has several writer threads, and
a sign-in counted its failure from the account's row read without a lock: concurrent guesses
all read the same count and each wrote it plus one, so the account never locked and a guesser
got as many tries as it could send at once. The decision reads the row locked now (a tax id's
accounts too), and a name without an account counts by one atomic increment.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import pytest

from server.app import create_app
from server.db import direct_connection
from server.demo import install_demo
from tests.conftest import with_security
from tests.dbaccess import db_rows, until_lock_waiters, url_of
from tests.helpdesk_support import ANDINA
from tests.helpers import api_login

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

GUESSES = 12
LIMIT = 5


async def _guesses_at_once(config, aiohttp_client, login: str):  # noqa: ANN001, ANN202
    """Two nodes, and ``GUESSES`` wrong passwords for ``login`` sent to them at once: (the nodes, the statuses)."""
    first_app = create_app(config)
    first_app.on_startup.append(install_demo)
    nodes = [await aiohttp_client(first_app), await aiohttp_client(create_app(config))]
    answers = await asyncio.gather(*(api_login(nodes[n % 2], login, f"Adivina{n}2026") for n in range(GUESSES)))
    statuses = [answer.status for answer in answers]
    assert statuses.count(401) == LIMIT - 1, statuses  # wrong, wrong, …, then the guess that locks it
    assert statuses.count(429) == GUESSES - LIMIT + 1, statuses
    return nodes


async def test_guesses_sent_at_once_to_two_nodes_lock_the_account_at_the_limit(config, aiohttp_client):
    config = with_security(config, login_max_failures_per_account=LIMIT, login_max_failures_per_address=100)
    nodes = await _guesses_at_once(config, aiohttp_client, "pacifico")
    counted = db_rows(
        config,
        "SELECT COUNT(*) FROM audit_log a JOIN users u ON u.id = a.user_id "
        "WHERE u.username = 'pacifico' AND a.event IN ('login.failed', 'login.locked')",
    )
    assert counted == [(LIMIT,)]
    # Locked: even the right password is refused now.
    assert (await api_login(nodes[0], "pacifico")).status == 429


async def test_guesses_at_a_name_no_account_has_lock_it_at_the_same_limit(config, aiohttp_client):
    """Locked like an account (the answers must not tell which names exist), though it has no row to lock
    before its first failure: its count is one atomic increment. A tax id counts the same way."""
    config = with_security(config, login_max_failures_per_account=LIMIT, login_max_failures_per_address=100)
    await _guesses_at_once(config, aiohttp_client, "nadie")
    assert db_rows(config, "SELECT failed_logins, locked_until > 0 FROM unknown_login_failures") == [(0, True)]


async def test_guesses_at_a_tax_id_sent_at_once_to_two_nodes_lock_it_at_the_limit(config, aiohttp_client):
    config = with_security(config, login_max_failures_per_account=LIMIT, login_max_failures_per_address=100)
    nodes = await _guesses_at_once(config, aiohttp_client, ANDINA)
    assert (await api_login(nodes[1], ANDINA)).status == 429


@contextlib.contextmanager
def failures_table_held(config) -> Iterator[None]:  # noqa: ANN001
    """Another transaction holding the address failures' table against writes (not reads) until the block
    ends: sign-ins that decide meanwhile count the failures, then wait to add theirs."""
    with direct_connection(url_of(config)) as db:
        db.execute("BEGIN")
        db.execute("LOCK TABLE login_failures IN SHARE MODE")
        try:
            yield
        finally:
            db.execute("COMMIT")


async def test_the_last_guess_an_address_has_left_is_not_given_to_two_nodes_at_once(config, aiohttp_client):
    """One address guessing at a different name each time: with one failure left before its limit, two
    guesses decided at once on two nodes used to both count the same failures and both get through.
    The address's failures are now counted in turn: one more guess, and the other is refused."""
    config = with_security(config, login_max_failures_per_account=100, login_max_failures_per_address=LIMIT)
    first_app = create_app(config)
    first_app.on_startup.append(install_demo)
    nodes = [await aiohttp_client(first_app), await aiohttp_client(create_app(config))]
    for n in range(LIMIT - 1):
        assert (await api_login(nodes[0], f"nadie{n}", "Adivina2026")).status == 401
    with failures_table_held(config):
        guesses = [asyncio.ensure_future(api_login(node, f"otro{n}", "Adivina2026")) for n, node in enumerate(nodes)]
        await until_lock_waiters(config, 2, guesses, "the two guesses did not both wait to record their failure")
    statuses = sorted(answer.status for answer in await asyncio.gather(*guesses))
    assert statuses == [401, 429]
    assert db_rows(config, "SELECT COUNT(*) FROM login_failures") == [(LIMIT,)]
