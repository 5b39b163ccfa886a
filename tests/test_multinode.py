"""Two server nodes on one PostgreSQL database behind a real HAProxy, with real gate agents.

Everything is a real process: a throwaway PostgreSQL cluster (``tests/pgcluster.py``), two
``portgate-server`` processes on their own ports sharing its database (the first loads the demo
data), HAProxy configured from ``systemd/haproxy.cfg.example`` (``tests/haproxy.py``), and gate
agents that reach the server through HAProxy. Where a test must reach one node in particular it
talks to that node's own port, as HAProxy would.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest

from gate_core.wire import CLOSE_REVOKED
from server.db import Database, scalar
from server.demo import DEMO_PASSWORD
from server.jobs import SKIPPED, JobLocks
from server.tickets.service import (
    code_for,
    confirm_purchase,
    generate_tickets,
    load_keys,
    print_ticket,
    record_purchase,
    rotate_signing_key,
    save_itinerary,
    save_service,
    validate_itinerary,
)
from tests import haproxy, pgcluster
from tests.conftest import free_port
from tests.netproxy import CuttableLink
from tests.stack import AgentProcess, KioskScreen, PortalUser, wait_until
from tests.test_agent_e2e import enrolled_agent

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(not (pgcluster.available() and haproxy.available()), reason="needs postgresql and haproxy"),
]

ROOT = Path(__file__).resolve().parent.parent
ANDINA_TAX_ID = "0991234567001"
SECRET = "multinode-secret"  # every node signs sessions and CSRF tokens with the same key


class Node:
    """One ``portgate-server`` process on its own port, on the shared database."""

    def __init__(self, name: str, data_dir: Path, database_url: str) -> None:
        self.name = name
        self.data_dir = data_dir
        self.database_url = database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, *, demo: bool = False) -> Node:
        env = {
            **os.environ,
            "PORTGATE_DATABASE_URL": self.database_url,
            "PORTGATE_SECURITY__SECRET_KEY": SECRET,
            "PORTGATE_MAIL__BACKEND": "folder",
        }
        command = [sys.executable, "-m", "server.cli", "--data-dir", str(self.data_dir), "--port", str(self.port)]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                command + (["--demo"] if demo else []), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 90
        while not _answers(self.url + "/healthz"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)
        return self

    def kill(self) -> None:
        """Gone at once, as a crash or a pulled plug: no request finished, no socket closed politely."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False


@dataclass
class Site:
    pg: pgcluster.PgCluster
    database_url: str
    nodes: list[Node]
    balancer: haproxy.Balancer
    base: Path

    @property
    def url(self) -> str:
        return self.balancer.url

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        with psycopg.connect(self.database_url) as conn:
            return conn.execute(sql, params).fetchall()

    def database(self) -> Database:
        return Database(self.database_url, readers=1, pool_size=2)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    base = tmp_path_factory.mktemp("multinode")
    pg = pgcluster.PgCluster.start()  # its own temp dir: PostgreSQL runs as another user when root
    database_url = pg.create_database("portgate")
    nodes: list[Node] = []
    balancer = None
    try:
        nodes.append(Node("node1", base / "data", database_url).start(demo=True))  # migrates, loads the demo
        nodes.append(Node("node2", base / "data", database_url).start())
        with psycopg.connect(database_url) as conn:  # room for every test's kiosks on the demo licence
            conn.execute("UPDATE serials SET max_machines = 1000")
        balancer = haproxy.Balancer(base / "haproxy", {node.name: node.port for node in nodes}).start()
        yield Site(pg, database_url, nodes, balancer, base)
    finally:
        if balancer is not None:
            balancer.stop()
        for node in nodes:
            node.stop()
        pg.stop()
    for node in nodes:
        assert "Traceback" not in node.log.read_text(), node.log.read_text()[-3000:]


# --- data, through the service layer on the shared database -------------------------------------


def make_tickets(site: Site, n: int) -> list[dict[str, Any]]:
    """``n`` printed tickets of the demo customer Andina on a fresh open itinerary, with their codes."""
    db = site.database()
    try:
        company = db.read_sync(scalar, "SELECT id FROM companies WHERE tax_id = ?", (ANDINA_TAX_ID,))
        start = datetime.now(UTC)
        values = validate_itinerary(
            {
                "vessel": "MSC NODES",
                "voyage": f"N{uuid.uuid4().hex[:8]}",
                "eta": start.isoformat(timespec="minutes"),
                "etd": (start + timedelta(days=2)).isoformat(timespec="minutes"),
                "valid_from": (start - timedelta(days=1)).isoformat(timespec="minutes"),
                "valid_until": (start + timedelta(days=2)).isoformat(timespec="minutes"),
            }
        )
        at = datetime.now(UTC)
        itinerary = db.write_sync(save_itinerary, values, now=at)
        service = db.write_sync(
            save_service, {"code": f"C{uuid.uuid4().hex[:5]}", "name_es": "Contenedor", "name_en": "Container"}, now=at
        )
        reference = f"N-{uuid.uuid4().hex[:10]}"
        purchase = db.write_sync(
            record_purchase, {"company_id": company, "quantity": n, "reference": reference}, now=at
        )
        db.write_sync(confirm_purchase, purchase, now=at)
        keys = db.read_sync(load_keys)
        values = {"quantity": n, "itinerary_id": itinerary, "services": [service]}
        tx = db.write_sync(generate_tickets, keys, company, None, values, datetime.now(UTC))
        tickets = db.read_sync(
            lambda d: list(d.query("SELECT * FROM tickets WHERE generation_id = ? ORDER BY id", (tx["generation_id"],)))
        )
        for ticket in tickets:
            db.write_sync(print_ticket, company, ticket["id"], now=at)
            ticket["code"] = code_for(keys, ticket)
        return tickets
    finally:
        db.close()


async def enrol_kiosk(base_url: str, name: str) -> dict[str, Any]:
    """As the gate supervisor in the portal: create a kiosk; then enrol it through the API."""
    supervisor = PortalUser(base_url)
    try:
        await supervisor.login("supervisor")
        code = await supervisor.create_kiosk(name)
        async with supervisor.session.post(
            "/api/v1/gate/enrol", json={"enrol_code": code, "fingerprint": f"mn-{name}", "agent_version": "test"}
        ) as resp:
            assert resp.status == 201, await resp.text()
            body = await resp.json()
    finally:
        await supervisor.close()
    body["headers"] = {"Authorization": f"Bearer {body['token']}"}
    return body


def scan(code: str) -> dict[str, str]:
    return {"scan_id": str(uuid.uuid4()), "code": code, "scanned_at": datetime.now(UTC).isoformat()}


async def next_ticket_row(ws: aiohttp.ClientWebSocketResponse, ticket_id: int, timeout: float) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            data = json.loads(msg.data)
            for raw in data.get("tickets", []) if data["type"] == "tickets" else []:
                row = dict(zip(data["columns"], raw, strict=True))
                if row["id"] == ticket_id:
                    return row


# --- what must hold across nodes ------------------------------------------------------------------


async def test_twenty_kiosks_redeeming_one_code_on_both_nodes_accept_exactly_once(site):
    (ticket,) = make_tickets(site, 1)
    kiosks = [await enrol_kiosk(site.url, f"Puerta M{i}-{uuid.uuid4().hex[:4]}") for i in range(20)]
    node1, node2 = site.nodes

    async def redeem(number: int, session: aiohttp.ClientSession) -> dict[str, Any]:
        node = (node1, node2)[number % 2]  # ten kiosks on each node, at once
        async with session.post(
            f"{node.url}/api/v1/gate/redeem", json=scan(ticket["code"]), headers=kiosks[number]["headers"]
        ) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()

    sessions = [aiohttp.ClientSession() for _ in kiosks]
    try:
        answers = await asyncio.gather(*(redeem(i, session) for i, session in enumerate(sessions)))
    finally:
        for session in sessions:
            await session.close()
    assert sorted(a["reason"] for a in answers) == ["accepted"] + ["already_used"] * 19
    assert site.rows("SELECT COUNT(*) FROM ticket_uses WHERE ticket_id = %s", (ticket["id"],)) == [(1,)]
    assert site.rows("SELECT COUNT(*), SUM(accepted) FROM scans WHERE ticket_id = %s", (ticket["id"],)) == [(20, 1)]


async def test_a_retry_of_a_scan_on_the_other_node_gets_the_first_answer(site):
    first, second = make_tickets(site, 2)
    kiosk = await enrol_kiosk(site.url, f"Puerta R-{uuid.uuid4().hex[:4]}")
    node1, node2 = site.nodes
    payload = scan(first["code"])
    async with aiohttp.ClientSession(headers=kiosk["headers"]) as session:
        async with session.post(f"{node1.url}/api/v1/gate/redeem", json=payload) as resp:
            answer = await resp.json()
        async with session.post(f"{node2.url}/api/v1/gate/redeem", json=payload) as resp:
            again = await resp.json()
        async with session.post(f"{node2.url}/api/v1/gate/redeem", json={**payload, "code": second["code"]}) as resp:
            other_code = await resp.json()
    assert answer["accepted"] and again["accepted"] and answer["scan_id"] == again["scan_id"]
    assert other_code["ticket_id"] == first["id"]  # the same scan id is still the first scan
    assert site.rows("SELECT COUNT(*) FROM scans WHERE scan_id = %s", (payload["scan_id"],)) == [(1,)]
    assert site.rows("SELECT COUNT(*) FROM ticket_uses WHERE ticket_id = %s", (second["id"],)) == [(0,)]


async def test_a_kiosk_revoked_on_one_node_is_refused_at_once_by_the_other_and_its_socket_closes(site):
    kiosk = await enrol_kiosk(site.url, f"Puerta X-{uuid.uuid4().hex[:4]}")
    (ticket,) = make_tickets(site, 1)
    node1, node2 = site.nodes
    async with aiohttp.ClientSession(headers=kiosk["headers"]) as session:
        for node in site.nodes:  # both nodes now hold the kiosk in their token cache
            async with session.get(f"{node.url}/api/v1/gate/me") as resp:
                assert resp.status == 200
        ws = await session.ws_connect(f"{node2.url}/api/v1/gate/live")
        assert json.loads((await ws.receive(timeout=5)).data)["type"] == "hello"

        supervisor = PortalUser(node1.url)
        try:
            await supervisor.login("supervisor")
            resp = await supervisor.post(f"/gate/kiosks/{kiosk['kiosk_id']}/revoke")
            assert resp.status == 200, await resp.text()
        finally:
            await supervisor.close()
        revoked = time.monotonic()

        # The very next call to the other node is refused, whatever it is.
        async with session.get(f"{node2.url}/api/v1/gate/me") as resp:
            assert resp.status == 403
            assert (await resp.json())["error"]["code"] == "revoked_kiosk"
        async with session.post(f"{node2.url}/api/v1/gate/redeem", json=scan(ticket["code"])) as resp:
            assert resp.status == 403
        # And the socket it held on that node is closed as revoked, within a second.
        closing = await ws.receive(timeout=max(0.01, 1.0 - (time.monotonic() - revoked)))
        assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, CLOSE_REVOKED)
    assert site.rows("SELECT COUNT(*) FROM ticket_uses WHERE ticket_id = %s", (ticket["id"],)) == [(0,)]


async def test_prints_deletions_and_uses_on_one_node_reach_a_socket_on_the_other_within_a_second(site):
    first, second = make_tickets(site, 2)
    listener = await enrol_kiosk(site.url, f"Escucha-{uuid.uuid4().hex[:4]}")
    scanner = await enrol_kiosk(site.url, f"Puerta L-{uuid.uuid4().hex[:4]}")
    node1, node2 = site.nodes
    customer = PortalUser(node1.url)
    async with aiohttp.ClientSession(headers=listener["headers"]) as session:
        ws = await session.ws_connect(f"{node2.url}/api/v1/gate/live")
        assert json.loads((await ws.receive(timeout=5)).data)["type"] == "hello"
        try:
            await customer.login("andina", company="Exportadora Andina S.A.")
            started = time.monotonic()
            resp = await customer.post(f"/tickets/{first['id']}/delete")
            assert resp.status == 200, await resp.text()
            row = await next_ticket_row(ws, first["id"], timeout=1.0)
            assert row["deleted"] == 1 and time.monotonic() - started < 1.0

            warm_up, fresh = await asyncio.to_thread(_unprinted_tickets, site, 2)
            resp = await customer.post(f"/tickets/{warm_up}/print")  # starts the node's PDF renderer
            assert resp.content_type == "application/pdf"
            await next_ticket_row(ws, warm_up, timeout=5.0)
            started = time.monotonic()
            resp = await customer.post(f"/tickets/{fresh}/print")
            assert resp.content_type == "application/pdf"
            row = await next_ticket_row(ws, fresh, timeout=1.0)
            assert row["printed"] == 1 and time.monotonic() - started < 1.0

            started = time.monotonic()
            async with aiohttp.ClientSession(headers=scanner["headers"]) as kiosk:
                async with kiosk.post(f"{node1.url}/api/v1/gate/redeem", json=scan(second["code"])) as r:
                    assert (await r.json())["accepted"]
            row = await next_ticket_row(ws, second["id"], timeout=1.0)
            assert str(row["used_by"]) == str(scanner["kiosk_id"]) and time.monotonic() - started < 1.0
        finally:
            await customer.close()
            await ws.close()


def _unprinted_tickets(site: Site, n: int) -> list[int]:
    rows = site.rows(
        "SELECT t.id FROM tickets t JOIN companies c ON c.id = t.company_id WHERE c.tax_id = %s "
        "AND t.printed_at IS NULL AND t.deleted_at IS NULL ORDER BY t.id LIMIT %s",
        (ANDINA_TAX_ID, n),
    )
    assert len(rows) == n, "the demo customer has no unprinted ticket left"
    return [row[0] for row in rows]


async def test_a_signing_key_rotated_through_one_node_signs_codes_the_other_accepts(site):
    db = site.database()
    try:
        db.write_sync(rotate_signing_key, now=datetime.now(UTC))
    finally:
        db.close()
    tickets = make_tickets(site, 2)  # signed with the new key
    kiosk = await enrol_kiosk(site.url, f"Puerta K-{uuid.uuid4().hex[:4]}")
    async with aiohttp.ClientSession(headers=kiosk["headers"]) as session:
        for node, ticket in zip(site.nodes, tickets, strict=True):
            async with session.post(f"{node.url}/api/v1/gate/redeem", json=scan(ticket["code"])) as resp:
                assert (await resp.json())["reason"] == "accepted"


async def test_a_human_check_token_works_once_whichever_node_checks_it(site):
    node1, node2 = site.nodes
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{node1.url}/api/v1/human-check") as resp:
            challenge = await resp.json()
        left, right = challenge["question"].split(" + ")
        body = {
            "login": "supervisor",
            "password": DEMO_PASSWORD,
            "human_token": challenge["token"],
            "human_answer": str(int(left) + int(right)),
        }
        async with session.post(f"{node2.url}/api/v1/auth/login", json=body) as resp:
            assert resp.status == 200, await resp.text()
        for node in (node1, node2):  # the same answered token again, on either node: used up
            async with session.post(f"{node.url}/api/v1/auth/login", json=body) as resp:
                assert resp.status == 400
                assert (await resp.json())["error"]["code"] == "human_check_failed"


async def test_a_scheduled_job_runs_on_one_node_at_a_time_and_passes_on_when_that_node_dies(site):
    node_a, node_b = JobLocks(site.database_url), JobLocks(site.database_url)
    running, finish = asyncio.Event(), asyncio.Event()
    # Job names of this test alone: the site's own nodes take the locks of their jobs (the mail outbox among
    # them) on their schedule, and one of them holding it would look like node A still delivering.
    job, other_job = f"test_outbox_{uuid.uuid4().hex}", f"test_other_{uuid.uuid4().hex}"

    async def long_pass() -> str:
        running.set()
        await finish.wait()
        return "a delivered"

    async def quick_pass() -> str:
        return "b delivered"

    try:
        first = asyncio.create_task(node_a.run(job, long_pass))
        await running.wait()
        assert await node_b.run(job, quick_pass) is SKIPPED  # node A is delivering
        assert await node_b.run(other_job, quick_pass) == "b delivered"  # one lock per job
        finish.set()
        assert await first == "a delivered"
        assert await node_b.run(job, quick_pass) == "b delivered"  # A's turn ended

        # A node that dies mid-pass (its connection gone) leaves the job to the others.
        running.clear()
        finish.clear()
        stuck = asyncio.create_task(node_a.run(job, long_pass))
        await running.wait()
        assert await node_b.run(job, quick_pass) is SKIPPED
        await node_a.close()  # as the node's process ending closes its connection
        # Its server process lets the lock go as it exits, a moment after the connection closed.
        deadline = time.monotonic() + 5
        while (outcome := await node_b.run(job, quick_pass)) is SKIPPED and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert outcome == "b delivered"
        finish.set()
        await stuck
    finally:
        await node_a.close()
        await node_b.close()


# --- real agents through HAProxy ------------------------------------------------------------------


def short_codes(site: Site, tickets: list[dict[str, Any]]) -> list[str]:
    ids = [t["id"] for t in tickets]
    found = dict(site.rows("SELECT id, short_code FROM tickets WHERE id = ANY(%s)", (ids,)))
    return [found[i] for i in ids]


def cached(agent: AgentProcess, ticket_ids: list[int]) -> bool:
    import sqlite3

    with sqlite3.connect(agent.data_dir / "agent.db", timeout=5) as conn:
        marks = ",".join("?" * len(ticket_ids))
        return conn.execute(f"SELECT COUNT(*) FROM tickets WHERE id IN ({marks})", ticket_ids).fetchone()[0] == len(
            ticket_ids
        )


async def test_an_offline_scan_uploads_through_the_balancer_when_the_link_returns(site):
    (ticket,) = make_tickets(site, 1)
    (short,) = short_codes(site, [ticket])
    async with CuttableLink(site.balancer.port) as link:
        gate = await enrolled_agent(site, site.base / "agents", f"Garita-Off-{uuid.uuid4().hex[:4]}")
        gate.server_url = link.url  # the kiosk reaches HAProxy only through the link
        gate.start()
        try:
            async with KioskScreen(gate) as screen:
                await screen.wait_status(lambda s: s["online"], timeout=20)
                await wait_until(lambda: cached(gate, [ticket["id"]]), timeout=15)
                link.cut_link()
                await screen.wait_status(lambda s: not s["online"], timeout=10)
                await screen.type_code(short)
                verdict = await screen.next_verdict()
                assert verdict["accepted"] and verdict["mode"] == "offline"
                link.restore()
                await wait_until(lambda: all(row[3] for row in gate.outbox()), timeout=20)
        finally:
            gate.stop()
    uses = site.rows("SELECT COUNT(*) FROM ticket_uses WHERE ticket_id = %s", (ticket["id"],))
    assert uses == [(1,)]
    assert site.rows("SELECT mode, accepted FROM scans WHERE ticket_id = %s", (ticket["id"],)) == [("offline", 1)]


def established(port: int) -> int:
    """Open TCP connections accepted on a loopback ``port`` (HAProxy's to that node), from /proc/net/tcp."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            for line in list(lines)[1:]:
                local, state = line.split()[1], line.split()[3]
                count += int(local.rsplit(":", 1)[1], 16) == port and state == "01"
    return count


async def test_killing_a_node_mid_traffic_loses_no_scan_and_kiosks_reconnect_through_the_other(site):
    per_gate = 12
    tickets = make_tickets(site, 2 * per_gate)
    codes = short_codes(site, tickets)
    gates = [
        await enrolled_agent(site, site.base / "agents", f"Garita-Kill{i}-{uuid.uuid4().hex[:4]}") for i in range(2)
    ]
    for gate in gates:
        gate.start()
    verdicts: list[dict[str, Any]] = []
    victim = site.nodes[0]
    try:
        async with KioskScreen(gates[0]) as screen0, KioskScreen(gates[1]) as screen1:
            screens = [screen0, screen1]
            for screen, gate in zip(screens, gates, strict=True):
                await screen.wait_status(lambda s: s["online"], timeout=20)
                await wait_until(lambda gate=gate: cached(gate, [t["id"] for t in tickets]), timeout=20)

            # The node holding the kiosks' live sockets is the one to lose (HAProxy spreads them).
            victim = max(site.nodes, key=lambda node: established(node.port))
            assert established(victim.port) >= 1

            async def lane(index: int) -> None:
                for number, code in enumerate(codes[index::2]):
                    if index == 0 and number == per_gate // 3:
                        victim.kill()  # mid-traffic: the other lane is scanning meanwhile
                    await screens[index].type_code(code)
                    verdicts.append(await screens[index].next_verdict(timeout=15))
                    await asyncio.sleep(0.1)

            await asyncio.gather(lane(0), lane(1))
            # Every scan was decided at the lane, accepted: online, or offline while the link recovered.
            modes = [v["mode"] for v in verdicts]
            assert len(verdicts) == 2 * per_gate and all(v["accepted"] for v in verdicts), modes
            # The kiosks' outboxes drain through the surviving node, and their live channel is back, there.
            for screen, gate in zip(screens, gates, strict=True):
                await wait_until(lambda gate=gate: all(row[3] for row in gate.outbox()), timeout=60)
                await screen.wait_status(lambda s: s["online"], timeout=30)
            (survivor,) = [node for node in site.nodes if node is not victim]
            assert established(survivor.port) >= 2 and established(victim.port) == 0
    finally:
        for gate in gates:
            gate.stop()
        victim.start()  # back for any later test
    ids = [t["id"] for t in tickets]
    assert site.rows(
        "SELECT COUNT(*), COUNT(DISTINCT ticket_id) FROM ticket_uses WHERE ticket_id = ANY(%s)", (ids,)
    ) == [(2 * per_gate, 2 * per_gate)]
    scans = site.rows("SELECT COUNT(*), SUM(accepted) FROM scans WHERE ticket_id = ANY(%s)", (ids,))
    assert scans == [(2 * per_gate, 2 * per_gate)]  # each scan once: retries of one scan id are one scan


async def test_the_balancer_keeps_metrics_for_the_monitoring_system(site):
    """The shipped HAProxy config refuses /metrics from outside, however it is spelt; the nodes still answer it
    on their own addresses, where the monitoring system scrapes them."""
    async with aiohttp.ClientSession() as session:
        for path in ("/metrics", "/%6detrics", "/METRICS", "/metrics?x=1"):
            async with session.get(f"{site.url}{path}") as resp:
                assert resp.status == 403, path
        async with session.get(f"{site.url}/healthz") as resp:
            assert resp.status == 200


async def test_a_kiosk_connected_to_one_node_shows_connected_in_the_other_nodes_kiosk_list(site):
    """The supervisor's kiosk list may be answered by either node; the kiosk's live channel is on one."""
    from tests.helpers import api_token, bearer

    kiosk = await enrol_kiosk(site.url, f"Puerta C-{uuid.uuid4().hex[:4]}")
    node1, node2 = site.nodes
    async with aiohttp.ClientSession(base_url=node2.url) as staff:
        headers = bearer(await api_token(staff, "supervisor"))

        async def connected_on_node2() -> bool:
            async with staff.get(f"/api/v1/kiosks/{kiosk['kiosk_id']}", headers=headers) as resp:
                assert resp.status == 200, await resp.text()
                return (await resp.json())["connected"]

        assert not await connected_on_node2()
        async with aiohttp.ClientSession(headers=kiosk["headers"]) as session:
            ws = await session.ws_connect(f"{node1.url}/api/v1/gate/live")
            assert json.loads((await ws.receive(timeout=5)).data)["type"] == "hello"
            deadline = time.monotonic() + 12  # node1 says so with its next liveness flush (every 5 s)
            while not await connected_on_node2():
                assert time.monotonic() < deadline, "node2 never saw the kiosk connected to node1"
                await asyncio.sleep(0.5)
            await ws.close()
