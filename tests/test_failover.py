"""Failover: the primary PostgreSQL dies, its streaming standby is promoted, and the nodes carry on.

Real processes: a primary cluster and a standby made with ``pg_basebackup -R`` (synchronous
replication, so a commit the primary acknowledged is on the standby), two server nodes whose
``database_url`` names both hosts with ``target_session_attrs=read-write``, HAProxy in front, and a
real gate agent scanning through it. The test kills the primary with ``SIGKILL``, lets the kiosk
scan while no database accepts writes, promotes the standby, and checks that the nodes reconnect
on their own and that every scan is recorded exactly once.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import aiohttp
import psycopg
import pytest

from tests import haproxy, pgcluster
from tests.stack import KioskScreen, PortalUser, wait_until
from tests.test_agent_e2e import enrolled_agent, gate_cache_deleted
from tests.test_multinode import Node, Site, cached, enrol_kiosk, make_tickets, next_ticket_row, short_codes

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(not (pgcluster.available() and haproxy.available()), reason="needs postgresql and haproxy"),
]


def failover_url(primary: pgcluster.PgCluster, standby: pgcluster.PgCluster, dbname: str) -> str:
    """Both hosts; libpq takes the first that accepts writes (the docs' recommended form)."""
    hosts = f"127.0.0.1:{primary.port},127.0.0.1:{standby.port}"
    return f"postgresql://{pgcluster.SUPERUSER}@{hosts}/{dbname}?target_session_attrs=read-write&connect_timeout=2"


@pytest.fixture
def replicated_site(tmp_path):
    primary = pgcluster.PgCluster.start()
    primary.create_database("portgate")
    standby = primary.start_standby()
    url = failover_url(primary, standby, "portgate")
    nodes: list[Node] = []
    balancer = None
    try:
        nodes.append(Node("node1", tmp_path / "data", url).start(demo=True))
        nodes.append(Node("node2", tmp_path / "data", url).start())
        with psycopg.connect(url) as conn:  # room for the kiosks on the demo licence
            conn.execute("UPDATE serials SET max_machines = 1000")
        balancer = haproxy.Balancer(tmp_path / "haproxy", {node.name: node.port for node in nodes}).start()
        primary.wait_for_standby()  # from here on a COMMIT returns once the standby has it
        yield Site(primary, url, nodes, balancer, tmp_path), standby
    finally:
        if balancer is not None:
            balancer.stop()
        for node in nodes:
            node.stop()
        standby.stop()
        primary.stop()


async def test_the_nodes_reconnect_to_a_promoted_standby_and_the_kiosks_lose_and_double_nothing(replicated_site):
    site, standby = replicated_site
    *tickets, spare = make_tickets(site, 10)
    codes = short_codes(site, tickets)
    gate = await enrolled_agent(site, site.base / "agents", f"Garita-Failover-{uuid.uuid4().hex[:4]}")
    gate.start()
    verdicts: list[dict[str, Any]] = []
    try:
        async with KioskScreen(gate) as screen:
            await screen.wait_status(lambda s: s["online"], timeout=20)
            await wait_until(lambda: cached(gate, [t["id"] for t in [*tickets, spare]]), timeout=20)

            async def scan_all(some: list[str]) -> None:
                for code in some:
                    await screen.type_code(code)
                    verdicts.append(await screen.next_verdict(timeout=20))

            await scan_all(codes[:3])  # online, on the primary
            assert [v["mode"] for v in verdicts] == ["online"] * 3

            site.pg.kill()  # the primary is gone; the standby accepts no writes yet
            await scan_all(codes[3:6])  # the lane keeps deciding, from its cache

            await asyncio.to_thread(standby.promote)
            await scan_all(codes[6:])
            # Every scan accepted at the lane, whatever the database was doing at that moment.
            assert [v["accepted"] for v in verdicts] == [True] * 9, [v["mode"] for v in verdicts]

            # The nodes found the new primary on their own: the outbox drains, the live channel is back.
            assert [v["mode"] for v in verdicts[3:6]] == ["offline"] * 3  # no database: decided at the lane
            await wait_until(lambda: all(row[3] for row in gate.outbox()), timeout=90, interval=0.5)
            await screen.wait_status(lambda s: s["online"], timeout=30)

            # And the nodes hear each other again, through the new primary: a deletion made on one node
            # reaches the kiosk live, and a socket held on the other node too.
            listener = await enrol_kiosk(site.url, f"Escucha-F-{uuid.uuid4().hex[:4]}")
            node1, node2 = site.nodes
            async with aiohttp.ClientSession(headers=listener["headers"]) as session:
                ws = await session.ws_connect(f"{node2.url}/api/v1/gate/live")
                assert json.loads((await ws.receive(timeout=5)).data)["type"] == "hello"
                customer = PortalUser(node1.url)
                try:
                    await customer.login("andina", company="Exportadora Andina S.A.")
                    resp = await customer.post(f"/tickets/{spare['id']}/delete")
                    assert resp.status == 200, await resp.text()
                finally:
                    await customer.close()
                assert (await next_ticket_row(ws, spare["id"], timeout=1.0))["deleted"] == 1
                await ws.close()
            await wait_until(lambda: gate_cache_deleted(gate, spare["id"]), timeout=5, interval=0.05)
    finally:
        gate.stop()
    ids = [t["id"] for t in tickets]
    with psycopg.connect(standby.url("portgate")) as conn:  # the promoted standby is the database now
        uses = conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT ticket_id) FROM ticket_uses WHERE ticket_id = ANY(%s)", (ids,)
        )
        assert uses.fetchone() == (9, 9)
        scans = conn.execute("SELECT COUNT(*), SUM(accepted) FROM scans WHERE ticket_id = ANY(%s)", (ids,))
        assert scans.fetchone() == (9, 9)  # nothing lost, nothing doubled
    for node in site.nodes:
        assert node.proc is not None and node.proc.poll() is None  # both served throughout, no restart
