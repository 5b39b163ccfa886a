"""The two engines themselves: the ``database_url`` setting, and what PostgreSQL gives several nodes.

The rest of the suite runs every database test on both engines (conftest's ``database_url``);
these are about choosing one and about what only several nodes on one PostgreSQL database show:
two apps on one database (as two nodes behind a balancer), two nodes starting at once, and the
database going away and coming back.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from concurrent.futures import ThreadPoolExecutor

import pytest

from server import cli
from server.app import create_app
from server.config import Config, ConfigError, SecurityConfig, load_config
from server.db import Database
from server.demo import install_demo
from server.migrations import MIGRATIONS
from tests import pgcluster
from tests.dbaccess import db_rows
from tests.gate_support import enrol_kiosk, make_tickets, redeem, scan

SECRET = "s3cret-Pw"
BAD_URLS = [
    (f"mysql://portgate:{SECRET}@db/portgate", "must start with sqlite:/// or postgresql://"),
    (f"postgresql://portgate:{SECRET}@/portgate", "names no host"),
    (f"postgresql://portgate:{SECRET}@db1:5432,db2:99999/portgate", "port above 65535"),
    (f"postgresql://portgate:{SECRET}@db1:5432", "names no database"),
    ("sqlite://portgate.db", "three slashes"),
]


@pytest.mark.parametrize(("url", "why"), BAD_URLS)
def test_a_bad_database_url_stops_the_server_naming_the_key_and_never_the_password(url, why):
    with pytest.raises(ConfigError) as raised:
        load_config(environ={"PORTGATE_DATABASE_URL": url})
    message = str(raised.value)
    assert message.startswith("database_url:") and why in message, message
    assert SECRET not in message

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert cli.main(["--database-url", url]) == 2
    assert "configuration error: database_url:" in err.getvalue() and SECRET not in err.getvalue()


def test_the_database_url_names_the_engine_and_sqlite_stays_the_default(tmp_path):
    default = load_config(environ={}, data_dir=str(tmp_path))
    assert default.db_url == f"sqlite://{tmp_path / 'portgate.db'}" and default.db_path == tmp_path / "portgate.db"
    chosen = load_config(environ={"PORTGATE_DATABASE_URL": f"sqlite://{tmp_path}/elsewhere.db"})
    assert chosen.db_path == tmp_path / "elsewhere.db"
    several = "postgresql://portgate:pw@db1:5432,db2:5432/portgate?target_session_attrs=read-write"
    assert load_config(environ={}, database_url=several).db_url == several


def test_nodes_starting_together_on_an_empty_database_migrate_it_once(pg_cluster):
    url = pg_cluster.create_database("migrated_once")
    nodes = [Database(url, readers=1, pool_size=2) for _ in range(3)]
    try:
        with ThreadPoolExecutor(3) as pool:
            applied = list(pool.map(lambda node: node.migrate(), nodes))
    finally:
        for node in nodes:
            node.close()
    assert sorted(len(numbers) for numbers in applied) == [0, 0, len(MIGRATIONS)]
    assert db_rows(url, "SELECT COUNT(*) FROM _migrations") == [(len(MIGRATIONS),)]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_two_nodes_on_one_database_accept_a_code_once_and_agree_on_its_use(config, aiohttp_client):
    """Twenty redeems of one code split over two nodes at once: one accepted, nineteen told "already used"."""
    first_app = create_app(config)
    first_app.on_startup.append(install_demo)
    first = await aiohttp_client(first_app)
    second = await aiohttp_client(create_app(config))
    gate_a, gate_b = await enrol_kiosk(first, "Puerta 1"), await enrol_kiosk(second, "Puerta 2")
    (ticket,) = await make_tickets(first_app, 1)

    verdicts = await asyncio.gather(
        *(redeem(first if i % 2 else second, gate_a if i % 2 else gate_b, ticket["code"]) for i in range(20))
    )

    accepted = [v for v in verdicts if v["accepted"]]
    assert len(accepted) == 1
    assert [v["reason"] for v in verdicts if not v["accepted"]] == ["already_used"] * 19
    assert {v["prior_use"]["scan_id"] for v in verdicts if not v["accepted"]} == {accepted[0]["scan_id"]}
    assert db_rows(config, "SELECT COUNT(*) FROM scans WHERE ticket_id = ? AND accepted = 1", (ticket["id"],)) == [(1,)]

    # The winning kiosk's retry reaches the other node: the same answer back, nothing logged twice.
    winner = next(i for i, verdict in enumerate(verdicts) if verdict["accepted"])
    kiosk, other_node = (gate_a, second) if winner % 2 else (gate_b, first)
    replay = await redeem(other_node, kiosk, ticket["code"], verdicts[winner]["scan_id"])
    assert replay["accepted"] and replay["scan_id"] == verdicts[winner]["scan_id"]
    assert db_rows(config, "SELECT COUNT(*) FROM scans WHERE scan_id = ?", (replay["scan_id"],)) == [(1,)]


async def test_a_lost_database_answers_503_and_the_server_reconnects_when_it_is_back(tmp_path, aiohttp_client):
    """A cluster of its own, killed and restarted under the running app."""
    if not pgcluster.available():
        pytest.skip("PostgreSQL is not installed (./portgate.sh test installs it)")
    cluster = pgcluster.PgCluster.start()
    try:
        config = Config(
            data_dir=str(tmp_path / "data"),
            database_url=cluster.create_database("portgate"),
            security=SecurityConfig(secret_key="test-secret"),
        )
        app = create_app(config)
        app.on_startup.append(install_demo)
        client = await aiohttp_client(app)
        kiosk = await enrol_kiosk(client, "Puerta 9")
        first, second = await make_tickets(app, 2)
        assert (await redeem(client, kiosk, first["code"]))["accepted"]

        cluster.kill()
        lost = await client.post("/api/v1/gate/redeem", json=scan(second["code"]), headers=kiosk["headers"])
        assert lost.status == 503 and lost.headers["Retry-After"] == "1"
        assert (await lost.json())["error"]["code"] == "busy"

        cluster.restart()
        verdict = await redeem(client, kiosk, second["code"])
        assert verdict["accepted"] and verdict["reason"] == "accepted"
        assert (await redeem(client, kiosk, first["code"]))["reason"] == "already_used"
        await client.close()  # before its database goes
    finally:
        cluster.stop()
