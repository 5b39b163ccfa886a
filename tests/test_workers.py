"""The server as several worker processes on one port and one SQLite file (``--workers 2``).

Real processes throughout: the server is started as ``portgate-server --demo --workers 2`` on a
free port; tickets are made through the service layer by this test process on the same file;
a request reaches a known worker by keeping one keep-alive connection per client and asking
``/healthz`` (which names the answering process) over it first.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from server.app import load_secret
from server.config import load_config
from server.db import Database, scalar
from server.human_check import BuiltinHumanCheck
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
from tests.conftest import free_port
from tests.stack import PortalUser

pytestmark = [pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parent.parent
ANDINA_TAX_ID = "0991234567001"


# --- the server under test ---------------------------------------------------------------------


class Cluster:
    """``portgate-server --workers N`` with demo data, and the systemd notify socket it reports to."""

    def __init__(self, base: Path, workers: int = 2, watchdog_usec: int | None = None) -> None:
        self.data_dir = base / "data"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.log = base / "server.log"
        # AF_UNIX paths are short (108 bytes): the socket lives in a short temporary folder.
        self._notify_dir = tempfile.mkdtemp(prefix="pgn-", dir="/tmp")
        self.notify_path = os.path.join(self._notify_dir, "notify")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        self.messages: list[str] = []
        self.watchdog_usec = watchdog_usec
        self.proc: subprocess.Popen | None = None

    def start(self) -> Cluster:
        env = {**os.environ, "NOTIFY_SOCKET": self.notify_path, "PORTGATE_MAIL__BACKEND": "folder"}
        env.pop("PORTGATE_SECURITY__SECRET_KEY", None)  # the parent creates secret.key once
        if self.watchdog_usec:
            env["WATCHDOG_USEC"] = str(self.watchdog_usec)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "--demo", "--workers", str(self.workers)]
                + ["--data-dir", str(self.data_dir), "--port", str(self.port)],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.wait_message("READY=1", 90)
        return self

    def receive(self, timeout: float) -> str | None:
        """The next sd_notify datagram, or None after ``timeout`` seconds."""
        self.notify.settimeout(timeout)
        try:
            message = self.notify.recv(4096).decode()
        except TimeoutError:
            return None
        self.messages.append(message)
        return message

    def wait_message(self, wanted: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while wanted not in self.messages:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {wanted} from the server; got {self.messages}")
            self.receive(min(left, 0.5))

    def worker_pids(self) -> set[int]:
        assert self.proc is not None
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return {int(pid) for pid in path.read_text().split()}

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        while self.receive(0.1) is not None:  # what the parent said on its way out
            pass
        self.notify.close()
        os.unlink(self.notify_path)
        os.rmdir(self._notify_dir)
        return self.proc.returncode

    def database(self) -> Database:
        return Database(self.data_dir / "portgate.db", readers=1)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    running = Cluster(tmp_path_factory.mktemp("workers")).start()
    yield running
    assert running.stop() == 0


async def pinned(url: str, *, avoid: int | None = None, want: int | None = None) -> tuple[aiohttp.ClientSession, int]:
    """A client session on one keep-alive connection, and the pid of the worker that serves it.

    Connections to the wrong worker stay open until the right one is found: a new connection
    goes to the worker holding fewer, so closing them would only bring the next one back there.
    """
    wrong: list[aiohttp.ClientSession] = []
    try:
        for _attempt in range(60):
            session = aiohttp.ClientSession(
                base_url=url, connector=aiohttp.TCPConnector(limit=1), cookie_jar=aiohttp.CookieJar(unsafe=True)
            )
            pid = await pid_of(session)
            if pid != avoid and want in (None, pid):
                return session, pid
            wrong.append(session)
        raise AssertionError("no connection reached the wanted worker")
    finally:
        for session in wrong:
            await session.close()


async def pid_of(session: aiohttp.ClientSession) -> int:
    async with session.get("/healthz") as resp:
        return (await resp.json())["pid"]


async def one_per_worker(url: str, workers: set[int]) -> dict[int, aiohttp.ClientSession]:
    sessions: dict[int, aiohttp.ClientSession] = {}
    for pid in workers:
        sessions[pid] = (await pinned(url, want=pid))[0]
    return sessions


# --- data, through the service layer on the same SQLite file ----------------------------------


def make_tickets(cluster: Cluster, n: int) -> list[dict[str, Any]]:
    """``n`` printed tickets of the demo customer Andina on a fresh open itinerary, with their codes."""
    db = cluster.database()
    try:
        company = db.write_sync(lambda d: scalar(d, "SELECT id FROM companies WHERE tax_id = ?", (ANDINA_TAX_ID,)))
        start = datetime.now(UTC)
        values = validate_itinerary(
            {
                "vessel": "MSC WORKERS",
                "voyage": f"W{uuid.uuid4().hex[:8]}",
                "eta": start.isoformat(timespec="minutes"),
                "etd": (start + timedelta(days=2)).isoformat(timespec="minutes"),
                "valid_from": (start - timedelta(days=1)).isoformat(timespec="minutes"),
                "valid_until": (start + timedelta(days=2)).isoformat(timespec="minutes"),
            }
        )
        at = datetime.now(UTC)
        itinerary = db.write_sync(save_itinerary, values, now=at)
        service = db.write_sync(save_service, {"code": "CONT", "name_es": "Contenedor", "name_en": "Container"}, now=at)
        reference = f"W-{uuid.uuid4().hex[:10]}"
        purchase = db.write_sync(
            record_purchase, {"company_id": company, "quantity": n, "reference": reference}, now=at
        )
        db.write_sync(confirm_purchase, purchase, now=at)
        keys = db.write_sync(load_keys)
        tx = db.write_sync(
            generate_tickets,
            keys,
            company,
            None,
            {"quantity": n, "itinerary_id": itinerary, "services": [service]},
            datetime.now(UTC),
        )
        tickets = db.write_sync(
            lambda d: list(d.query("SELECT * FROM tickets WHERE generation_id = ? ORDER BY id", (tx["generation_id"],)))
        )
        for ticket in tickets:
            db.write_sync(print_ticket, company, ticket["id"], now=at)
            ticket["code"] = code_for(keys, ticket)
        return tickets
    finally:
        db.close()


def rows(cluster: Cluster, sql: str, params: tuple = ()) -> list[tuple]:
    db = cluster.database()
    try:
        return db.write_sync(lambda d: d.execute(sql, params).fetchall())
    finally:
        db.close()


async def enrol_kiosk(cluster: Cluster, name: str) -> dict[str, Any]:
    """As the gate supervisor in the portal: create a kiosk; then enrol it through the API."""
    supervisor = PortalUser(cluster.url)
    try:
        await supervisor.login("supervisor")
        code = await supervisor.create_kiosk(name)
        async with supervisor.session.post(
            "/api/v1/gate/enrol", json={"enrol_code": code, "fingerprint": "workers-test", "agent_version": "test"}
        ) as resp:
            assert resp.status == 201, await resp.text()
            body = await resp.json()
    finally:
        await supervisor.close()
    body["headers"] = {"Authorization": f"Bearer {body['token']}"}
    return body


def scan(code: str) -> dict[str, str]:
    return {"scan_id": str(uuid.uuid4()), "code": code, "scanned_at": datetime.now(UTC).isoformat()}


# --- behaviour across workers ------------------------------------------------------------------


async def test_twenty_concurrent_redeems_of_one_code_over_both_workers_accept_exactly_one(cluster):
    (ticket,) = make_tickets(cluster, 1)
    kiosks = [await enrol_kiosk(cluster, f"Puerta W{i}-{uuid.uuid4().hex[:4]}") for i in range(2)]
    clients = [await pinned(cluster.url) for _ in range(20)]
    assert {pid for _session, pid in clients} == cluster.worker_pids()  # both workers take part

    async def redeem(number: int, session: aiohttp.ClientSession) -> dict[str, Any]:
        kiosk = kiosks[number % 2]
        async with session.post("/api/v1/gate/redeem", json=scan(ticket["code"]), headers=kiosk["headers"]) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()

    try:
        answers = await asyncio.gather(*(redeem(i, session) for i, (session, _pid) in enumerate(clients)))
    finally:
        for session, _pid in clients:
            await session.close()
    assert sum(a["accepted"] for a in answers) == 1
    assert sorted(a["reason"] for a in answers) == ["accepted"] + ["already_used"] * 19
    assert rows(cluster, "SELECT COUNT(*) FROM ticket_uses WHERE ticket_id = ?", (ticket["id"],)) == [(1,)]
    assert rows(cluster, "SELECT COUNT(*), SUM(accepted) FROM scans WHERE ticket_id = ?", (ticket["id"],)) == [(20, 1)]


async def test_a_retry_of_a_scan_on_the_other_worker_gets_the_first_answer(cluster):
    first, second = make_tickets(cluster, 2)
    kiosk = await enrol_kiosk(cluster, f"Puerta R-{uuid.uuid4().hex[:4]}")
    sessions = await one_per_worker(cluster.url, cluster.worker_pids())
    a, b = sessions.values()
    try:
        payload = scan(first["code"])
        async with a.post("/api/v1/gate/redeem", json=payload, headers=kiosk["headers"]) as resp:
            answer = await resp.json()
        async with b.post("/api/v1/gate/redeem", json=payload, headers=kiosk["headers"]) as resp:
            again = await resp.json()
        assert answer["accepted"] and again["accepted"] and answer["scan_id"] == again["scan_id"]
        # The same scan id with another code is still the first scan: the stored verdict comes back.
        async with b.post(
            "/api/v1/gate/redeem", json={**payload, "code": second["code"]}, headers=kiosk["headers"]
        ) as resp:
            assert (await resp.json())["ticket_id"] == first["id"]
    finally:
        for session in sessions.values():
            await session.close()
    assert rows(cluster, "SELECT COUNT(*) FROM scans WHERE scan_id = ?", (payload["scan_id"],)) == [(1,)]
    assert rows(cluster, "SELECT COUNT(*) FROM ticket_uses WHERE ticket_id = ?", (second["id"],)) == [(0,)]


async def test_a_kiosk_revoked_through_one_worker_is_refused_at_once_by_every_worker(cluster):
    kiosk = await enrol_kiosk(cluster, f"Puerta X-{uuid.uuid4().hex[:4]}")
    (ticket,) = make_tickets(cluster, 1)
    sessions = await one_per_worker(cluster.url, cluster.worker_pids())
    supervisor = PortalUser(cluster.url)
    try:
        for session in sessions.values():  # both workers now hold the kiosk in their token cache
            async with session.get("/api/v1/gate/me", headers=kiosk["headers"]) as resp:
                assert resp.status == 200
        await supervisor.session.close()
        supervisor.session, revoking_pid = await pinned(cluster.url)
        await supervisor.login("supervisor")
        resp = await supervisor.post(f"/gate/kiosks/{kiosk['kiosk_id']}/revoke")
        assert resp.status == 200, await resp.text()
        assert await pid_of(supervisor.session) == revoking_pid

        # The very next call is refused, by the worker that revoked and by the other one.
        for pid, session in sessions.items():
            async with session.get("/api/v1/gate/me", headers=kiosk["headers"]) as resp:
                assert resp.status == 403, pid
                assert (await resp.json())["error"]["code"] == "revoked_kiosk"
            async with session.post("/api/v1/gate/redeem", json=scan(ticket["code"]), headers=kiosk["headers"]) as r:
                assert r.status == 403
            assert await pid_of(session) == pid  # it really was that worker
    finally:
        await supervisor.close()
        for session in sessions.values():
            await session.close()
    assert rows(cluster, "SELECT COUNT(*) FROM ticket_uses WHERE ticket_id = ?", (ticket["id"],)) == [(0,)]


async def test_a_deletion_through_one_worker_reaches_a_socket_on_the_other_within_two_seconds(cluster):
    first, second = make_tickets(cluster, 2)
    listener = await enrol_kiosk(cluster, f"Escucha-{uuid.uuid4().hex[:4]}")
    scanner = await enrol_kiosk(cluster, f"Puerta L-{uuid.uuid4().hex[:4]}")
    ws_session, ws_pid = await pinned(cluster.url)
    customer = PortalUser(cluster.url)
    try:
        ws = await ws_session.ws_connect("/api/v1/gate/live", headers=listener["headers"])
        assert json.loads((await ws.receive(timeout=5)).data)["type"] == "hello"

        await customer.session.close()
        customer.session, customer_pid = await pinned(cluster.url, avoid=ws_pid)
        await customer.login("andina", company="Exportadora Andina S.A.")
        started = time.monotonic()
        resp = await customer.post(f"/tickets/{first['id']}/delete")
        assert resp.status == 200, await resp.text()
        assert await pid_of(customer.session) == customer_pid != ws_pid
        row = await _next_ticket_row(ws, first["id"], timeout=2.0)
        assert row["deleted"] == 1 and time.monotonic() - started < 2.0

        # A use at a kiosk served by the other worker arrives the same way.
        other, _pid = await pinned(cluster.url, avoid=ws_pid)
        async with other:
            async with other.post("/api/v1/gate/redeem", json=scan(second["code"]), headers=scanner["headers"]) as r:
                assert (await r.json())["accepted"]
        row = await _next_ticket_row(ws, second["id"], timeout=2.0)
        assert row["used_at"] and row["used_by"] == scanner["kiosk_id"]
        await ws.close()
    finally:
        await customer.close()
        await ws_session.close()


async def _next_ticket_row(ws: aiohttp.ClientWebSocketResponse, ticket_id: int, timeout: float) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            data = json.loads(msg.data)
            for raw in data.get("tickets", []) if data["type"] == "tickets" else []:
                row = dict(zip(data["columns"], raw, strict=True))
                if row["id"] == ticket_id:
                    return row


async def test_a_signing_key_rotated_in_the_database_reaches_every_worker(cluster):
    db = cluster.database()
    try:
        db.write_sync(rotate_signing_key, now=datetime.now(UTC))
    finally:
        db.close()
    tickets = make_tickets(cluster, 4)  # signed with the new key
    assert len({t["key_id"] for t in tickets}) == 1
    kiosk = await enrol_kiosk(cluster, f"Puerta K-{uuid.uuid4().hex[:4]}")
    await asyncio.sleep(1.5)  # workers look for new keys every half second
    sessions = await one_per_worker(cluster.url, cluster.worker_pids())
    try:
        for session, ticket in zip([*sessions.values(), *sessions.values()], tickets, strict=False):
            async with session.post("/api/v1/gate/redeem", json=scan(ticket["code"]), headers=kiosk["headers"]) as r:
                assert (await r.json())["reason"] == "accepted"
    finally:
        for session in sessions.values():
            await session.close()


async def test_a_write_lock_held_outside_the_server_delays_redeems_without_errors_or_a_stalled_loop(cluster):
    tickets = make_tickets(cluster, 4)
    kiosk = await enrol_kiosk(cluster, f"Puerta B-{uuid.uuid4().hex[:4]}")
    import sqlite3

    outsider = sqlite3.connect(cluster.data_dir / "portgate.db", isolation_level=None, timeout=10)
    sessions = await one_per_worker(cluster.url, cluster.worker_pids())
    try:
        outsider.execute("BEGIN IMMEDIATE")  # as a tool that writes for a while would

        async def redeem(session: aiohttp.ClientSession, ticket: dict[str, Any]) -> tuple[int, dict]:
            async with session.post("/api/v1/gate/redeem", json=scan(ticket["code"]), headers=kiosk["headers"]) as r:
                return r.status, await r.json()

        pending = [
            asyncio.create_task(redeem(s, t))
            for s, t in zip([*sessions.values(), *sessions.values()], tickets, strict=True)
        ]
        await asyncio.sleep(1.0)
        assert not any(task.done() for task in pending)
        async with aiohttp.ClientSession() as probe:  # the event loops still answer meanwhile
            for _ in range(6):
                async with probe.get(f"{cluster.url}/healthz", timeout=aiohttp.ClientTimeout(total=2)) as resp:
                    assert resp.status == 200
        outsider.execute("COMMIT")
        answers = await asyncio.gather(*pending)
    finally:
        outsider.close()
        for session in sessions.values():
            await session.close()
    assert [status for status, _ in answers] == [200] * 4
    assert all(answer["accepted"] for _, answer in answers)


# --- starting, supervising and stopping ----------------------------------------------------------


async def test_ready_once_all_workers_listen_watchdog_restart_and_clean_stop(tmp_path):
    cluster = Cluster(tmp_path, workers=2, watchdog_usec=1_000_000).start()
    try:
        # READY came from the parent after both workers listened: both answer at once, and
        # keep-alive connections (kiosks) are spread evenly over them, not as a hash falls
        # (15/15 would be a 1-in-7 chance with SO_REUSEPORT).
        workers = cluster.worker_pids()
        assert len(workers) == 2
        clients = [await pinned(cluster.url) for _ in range(30)]
        try:
            split = Counter(pid for _session, pid in clients)
            assert set(split) == workers and sorted(split.values()) == [15, 15]
            # Each stays with the worker that took it; closing half of one worker's makes room there.
            assert [await pid_of(session) for session, _pid in clients] == [pid for _session, pid in clients]
            emptied = max(workers)
            for session, _pid in [c for c in clients if c[1] == emptied][:8]:
                await session.close()
            await asyncio.sleep(0.5)  # counts are shared within a quarter of a second
            more = [await pinned(cluster.url) for _ in range(8)]
            clients += more
            assert Counter(pid for _session, pid in more) == {emptied: 8}
        finally:
            for session, _pid in clients:
                await session.close()
        assert cluster.messages.count("READY=1") == 1
        assert (cluster.data_dir / "secret.key").stat().st_mode & 0o777 == 0o600

        # The parent pings the watchdog (every WATCHDOG_USEC / 2).
        before = cluster.messages.count("WATCHDOG=1")
        deadline = time.monotonic() + 3
        while cluster.messages.count("WATCHDOG=1") < before + 2 and time.monotonic() < deadline:
            cluster.receive(0.5)
        assert cluster.messages.count("WATCHDOG=1") >= before + 2

        # A worker that dies is replaced; the port keeps answering meanwhile.
        victim = sorted(workers)[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            current = cluster.worker_pids()
            if victim not in current and len(current) == 2:
                break
            await asyncio.sleep(0.2)
        current = cluster.worker_pids()
        assert victim not in current and len(current) == 2
        replacement = (current - workers).pop()
        session, _pid = await pinned(cluster.url, want=replacement)
        await session.close()
    finally:
        pids = cluster.worker_pids() if cluster.proc and cluster.proc.poll() is None else set()
        code = cluster.stop()
    # SIGTERM: every worker finished before the parent, which told systemd it was stopping.
    assert code == 0
    assert "STOPPING=1" in cluster.messages
    assert pids and not any(Path(f"/proc/{pid}").exists() for pid in pids)
    assert "Traceback" not in cluster.log.read_text()


async def ten_new_clients(url: str) -> tuple[set[int], float]:
    """Ten keep-alive clients connecting one after another: the workers that took them, and how long it took."""
    started = time.monotonic()
    clients = [await pinned(url) for _ in range(10)]
    took = time.monotonic() - started
    for session, _pid in clients:
        await session.close()
    return {pid for _session, pid in clients}, took


async def test_a_stuck_worker_is_not_waited_for_and_a_stopping_server_refuses_new_clients(tmp_path):
    cluster = Cluster(tmp_path, workers=2).start()
    try:
        stuck, running = sorted(cluster.worker_pids())
        os.kill(stuck, signal.SIGSTOP)
        try:
            await asyncio.sleep(1.5)  # its count goes stale: the other worker stops leaving it connections
            served_by, took = await ten_new_clients(cluster.url)
        finally:
            os.kill(stuck, signal.SIGCONT)
        assert served_by == {running}
        assert took < 1.5, f"10 connections took {took:.2f} s"  # 2 s if each waited for the stuck one

        # A worker out of file descriptors cannot accept: it is not waited for either.
        await asyncio.sleep(1.5)  # the stopped worker counts again
        open_fds = {int(fd) for fd in os.listdir(f"/proc/{stuck}/fd")}
        lowest_free = min(set(range(max(open_fds) + 2)) - open_fds)
        limits = resource.prlimit(stuck, resource.RLIMIT_NOFILE)
        resource.prlimit(stuck, resource.RLIMIT_NOFILE, (lowest_free, limits[1]))
        try:
            served_by, took = await ten_new_clients(cluster.url)
        finally:
            resource.prlimit(stuck, resource.RLIMIT_NOFILE, limits)
        assert served_by == {running}
        assert took < 1.5, f"10 connections took {took:.2f} s"
        assert "cannot accept connections" in cluster.log.read_text()

        # A request still being sent holds its worker's shutdown open (up to 10 s); meanwhile a
        # new client must be refused at once (so a kiosk tries again or elsewhere), not accepted
        # by nobody and reset seconds later.
        host, port = "127.0.0.1", cluster.port
        _reader, slow = await asyncio.open_connection(host, port)
        slow.write(b"POST /api/v1/gate/redeem HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        await slow.drain()
        await asyncio.sleep(0.3)
        assert cluster.proc is not None
        cluster.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        refused = False
        while not refused and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            try:
                _r, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 2)
            except ConnectionRefusedError:
                refused = True
            else:
                writer.close()
        assert refused, "the port still took connections while the server was stopping"
        assert cluster.proc.poll() is None  # still finishing the slow request meanwhile
        slow.close()
    finally:
        code = cluster.stop()
    assert code == 0


async def test_a_port_already_in_use_stops_the_server_with_a_message(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "server.cli", "--workers", "2", "--data-dir", str(tmp_path), "--port", str(port)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert "cannot start" in result.stderr


# --- state that must hold across processes, without a server -------------------------------------


async def test_a_human_check_token_works_once_whichever_process_checks_it(tmp_path):
    path = tmp_path / "portgate.db"
    first, second = Database(path), Database(path)  # as two worker processes would open it
    try:
        first.migrate()
        a, b = BuiltinHumanCheck("s3cret", db=first), BuiltinHumanCheck("s3cret", db=second)
        challenge = a.challenge()
        left, right = challenge["question"].split(" + ")
        form = {"human_token": challenge["token"], "human_answer": str(int(left) + int(right))}
        assert await b.verify(form, "10.0.0.1")
        assert not await a.verify(form, "10.0.0.2")
        assert not await b.verify(form, "10.0.0.1")
    finally:
        first.close()
        second.close()


def _read_secret(data_dir: str, queue) -> None:  # noqa: ANN001 - runs in a child process
    queue.put(load_secret(load_config(data_dir=data_dir, environ={})))


def test_processes_starting_together_share_one_secret_key(tmp_path):
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    children = [context.Process(target=_read_secret, args=(str(tmp_path), queue)) for _ in range(6)]
    for child in children:
        child.start()
    secrets = {queue.get(timeout=30) for _ in children}
    for child in children:
        child.join(30)
    assert len(secrets) == 1 and len(secrets.pop()) == 64
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]
