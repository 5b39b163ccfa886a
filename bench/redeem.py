"""Online-redeem benchmark: 50 concurrent kiosk clients against the real server and its database.

    python -m bench.redeem [--database-url URL] [--nodes 1] [--n 20000] [--clients 50] [--replays 0.05]
                           [--tickets 200000]

Seeds ``--tickets`` printed tickets, starts the real server as a subprocess, enrols kiosks, and
from a separate load-generator process sends ``--n`` redeems of distinct valid codes plus
``--replays`` × n replays (an already redeemed code under a new scan id, as a second truck with
a photocopy would), ``--clients`` requests in flight at any time. Scan ids are made as the gate
agent makes them (:func:`gate_agent.agent.new_scan_id`). Latency is measured per
request by the client. double-accepts counts tickets accepted more than once, from the answers
and from the database; it must be 0. ``--database-url``: ``sqlite:///path/portgate.db`` (by
default a new file in a temp dir) or ``postgresql://…`` (an empty database). Targets on the
2-core box, server and load generator together: SQLite ≥ 2000 req/s, p99 ≤ 40 ms; the last line
reads ``redeem[<engine>]: <N> req/s, p99 <X> ms, double-accepts <K>``. ``--nodes N`` (PostgreSQL
only) runs N server processes on the database behind HAProxy, configured as
``systemd/haproxy.cfg.example`` ships (target with 2: ≥ 1500 req/s, p99 ≤ 50 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from bench.seed import seed_tickets, signed_codes
from bench.server_process import cpu_seconds, enrol_kiosk, server_process
from gate_agent.agent import new_scan_id
from server.db import direct_connection, is_postgresql

KIOSKS = 5
WARM_UP = 1000


class _Plan:
    """The requests still to send, shared by every client, and the answers as they arrive."""

    def __init__(self, bodies: list[bytes]) -> None:
        self.bodies = bodies
        self.position = 0
        self.answers: list[tuple[float, int, bytes]] = []  # (ms, status, body), parsed once timing is over


class _Kiosk(asyncio.Protocol):
    """One kiosk client: a keep-alive HTTP/1.1 connection that sends its next redeem the moment
    the answer to its last one has arrived, until the plan runs out.

    The load generator shares the two cores with the server, so every microsecond it spends is
    one the server does not get: aiohttp's client costs ~400 µs of CPU per request on this box
    (as much as the server's own work), asyncio streams ~100 µs, a coroutine per client with a
    future per request ~80 µs. A bare protocol that answers from its own callback costs a
    fraction of that; answers are only timed here and parsed after the clock has stopped.
    """

    def __init__(self, host: str, token: str, plan: _Plan) -> None:
        self.head = (
            f"POST /api/v1/gate/redeem HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()
        self.plan = plan
        self.finished = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self._buffer = b""
        self._sent_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send_next(self) -> None:
        plan = self.plan
        if plan.position >= len(plan.bodies):
            if not self.finished.done():
                self.finished.set_result(None)
            return
        body = plan.bodies[plan.position]
        plan.position += 1
        assert self.transport is not None
        self._sent_at = time.perf_counter()
        self.transport.write(self.head + str(len(body)).encode() + b"\r\n\r\n" + body)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self._buffer[:end]
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if len(self._buffer) < end + 4 + length:
            return
        elapsed = (time.perf_counter() - self._sent_at) * 1000
        body, self._buffer = self._buffer[end + 4 : end + 4 + length], self._buffer[end + 4 + length :]
        self.plan.answers.append((elapsed, int(head[9:12]), body))
        self.send_next()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.finished.done():
            self.finished.set_exception(exc or ConnectionError("the server closed the connection"))


async def _load(base: str, tokens: list[str], codes: list[str], clients: int) -> tuple[list, float]:
    """Send every code once, ``clients`` at a time; returns [(ms, ticket_id, accepted, reason)], seconds."""
    host = base.removeprefix("http://")
    address, port = host.split(":")
    # Bodies are made before the clock starts: making them is the kiosks' work, not the server's.
    scanned_at = datetime.now(UTC).isoformat()
    plan = _Plan(
        [json.dumps({"scan_id": new_scan_id(), "code": code, "scanned_at": scanned_at}).encode() for code in codes]
    )
    loop = asyncio.get_running_loop()
    kiosks: list[_Kiosk] = []
    for number in range(clients):
        _transport, kiosk = await loop.create_connection(
            lambda n=number: _Kiosk(host, tokens[n % len(tokens)], plan), address, int(port)
        )
        kiosks.append(kiosk)
    started = time.perf_counter()
    for kiosk in kiosks:
        kiosk.send_next()
    await asyncio.gather(*(kiosk.finished for kiosk in kiosks))
    seconds = time.perf_counter() - started
    for kiosk in kiosks:
        assert kiosk.transport is not None
        kiosk.transport.close()
    results = []
    for elapsed, status, body in plan.answers:
        answer = json.loads(body)
        if status != 200:
            raise RuntimeError(f"redeem answered {status}: {answer}")
        results.append((elapsed, answer["ticket_id"], answer["accepted"], answer["reason"]))
    return results, seconds


def _run(coro):  # noqa: ANN001, ANN202
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def _load_generator(base: str, tokens: list[str], warm_up: list[str], codes: list[str], clients: int, queue) -> None:
    """The load generator's process: warm up, then the measured run; results go back on ``queue``."""
    _run(_load(base, tokens, warm_up, clients))
    queue.put("measuring")
    cpu = time.process_time()
    results, seconds = _run(_load(base, tokens, codes, clients))
    queue.put((results, seconds, time.process_time() - cpu))


def _plan(codes: list[str], replay_share: float, rng: random.Random) -> list[str]:
    """Distinct codes in random order, with replays of earlier codes mixed in after their first use."""
    order = codes[:]
    rng.shuffle(order)
    plan = list(order)
    for _ in range(int(len(order) * replay_share)):
        original = rng.randrange(len(order) // 2)
        plan.insert(rng.randrange(original + 200, len(plan) + 1), order[original])
    return plan


def _double_accepts_in_db(database_url: str) -> int:
    with direct_connection(database_url) as db:
        return db.execute(
            "SELECT COUNT(*) FROM (SELECT ticket_id FROM scans WHERE accepted = 1 GROUP BY ticket_id "
            "HAVING COUNT(*) > 1) doubled"
        ).fetchone()[0]


def _report(args: argparse.Namespace, engine: str, results: list, seconds: float, cpu: tuple[float, float], in_db: int):
    """The summary lines; the last one is the figure (``redeem[<engine>]: …``)."""
    server_cpu, generator_cpu = cpu
    latencies = sorted(r[0] for r in results)
    accepted = Counter(r[1] for r in results if r[2])
    reasons = Counter(r[3] for r in results)
    double = max(sum(1 for n in accepted.values() if n > 1), in_db)
    rate = len(results) / seconds
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    p90 = latencies[int(len(latencies) * 0.9)]
    print(
        f"{len(results)} redeems in {seconds:.2f} s; p50 {p50:.1f} ms, p90 {p90:.1f} ms, max {latencies[-1]:.1f} ms; "
        f"reasons {dict(reasons)}"
    )
    # Throughput depends on what else runs on the box; the server's CPU per redeem does not.
    print(
        f"server CPU {server_cpu / len(results) * 1e6:.0f} µs per redeem "
        f"({server_cpu / seconds * 100:.0f}% of one core); "
        f"load average {os.getloadavg()[0]:.1f}; load generator {generator_cpu / len(results) * 1e6:.0f} µs per redeem"
    )
    print(f"redeem[{engine}]: {rate:.0f} req/s, p99 {p99:.1f} ms, double-accepts {double}")


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.redeem", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", default="", help="sqlite:///path or postgresql://… (default: a temp SQLite file)"
    )
    parser.add_argument("--n", type=int, default=20_000, help="distinct codes redeemed (default 20,000)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--replays", type=float, default=0.05, help="share of replayed codes (default 0.05)")
    parser.add_argument("--tickets", type=int, default=200_000, help="tickets in the database (default 200,000)")
    parser.add_argument("--seed", type=int, default=1, help="random seed for the request order")
    parser.add_argument(
        "--nodes", type=int, default=1, help="server processes behind HAProxy (PostgreSQL only; default 1)"
    )
    args = parser.parse_args(argv)
    if args.n < 400:
        parser.error("--n must be at least 400")
    if args.nodes < 1 or (args.nodes > 1 and not is_postgresql(args.database_url)):
        parser.error("--nodes above 1 needs --database-url postgresql://… (SQLite is one process)")
    return args


def _seed(args: argparse.Namespace, database_url: str, rng: random.Random) -> tuple[list[str], list[str]]:
    """Seed the tickets; returns the warm-up codes and the measured plan."""
    total = max(args.tickets, args.n + WARM_UP)
    seeded = seed_tickets(database_url, total, companies=50, itineraries=20)
    ids = rng.sample(range(seeded.first_ticket_id, seeded.last_ticket_id + 1), args.n + WARM_UP)
    codes = signed_codes(database_url, ids)
    plan = _plan([codes[i] for i in ids[WARM_UP:]], args.replays, rng)
    print(f"seeded {total} tickets in {seeded.seconds:.1f} s; {len(plan)} redeems planned", file=sys.stderr)
    return [codes[i] for i in ids[:WARM_UP]], plan


def _measure(base: str, servers: list, tokens: list[str], warm_up: list[str], plan: list[str], clients: int):  # noqa: ANN202
    """Run the load generator against ``base``; returns (results, seconds, (servers' CPU, generator's CPU))."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    generator = context.Process(target=_load_generator, args=(base, tokens, warm_up, plan, clients, queue))
    generator.start()
    assert queue.get() == "measuring"
    cpu_before = sum(cpu_seconds(server) for server in servers)
    results, seconds, generator_cpu = queue.get()
    server_cpu = sum(cpu_seconds(server) for server in servers) - cpu_before
    generator.join()
    return results, seconds, (server_cpu, generator_cpu)


@contextlib.contextmanager
def _servers(data_dir: Path, database_url: str, nodes: int):  # noqa: ANN202
    """``nodes`` server processes on the database; with more than one, HAProxy in front: (base URL, processes)."""
    with contextlib.ExitStack() as stack:
        started = [stack.enter_context(server_process(data_dir, database_url=database_url)) for _ in range(nodes)]
        if nodes == 1:
            yield started[0][0], [started[0][1]]
            return
        from tests.haproxy import Balancer  # the shipped example's settings, on free loopback ports

        ports = {f"node{i + 1}": int(base.rsplit(":", 1)[1]) for i, (base, _process) in enumerate(started)}
        balancer = Balancer(data_dir.parent / "haproxy", ports).start()
        stack.callback(balancer.stop)
        yield balancer.url, [process for _base, process in started]


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="pg-bench-redeem-") as tmp:
        data_dir = Path(tmp) / "data"
        database_url = args.database_url or f"sqlite://{data_dir.absolute() / 'portgate.db'}"
        engine = "postgresql" if is_postgresql(database_url) else "sqlite"
        warm_up, plan = _seed(args, database_url, rng)
        with _servers(data_dir, database_url, args.nodes) as (base, servers):
            tokens = [enrol_kiosk(base, database_url, f"bench-kiosk-{i}") for i in range(KIOSKS)]
            results, seconds, cpu = _measure(base, servers, tokens, warm_up, plan, args.clients)
        in_db = _double_accepts_in_db(database_url)
    _report(args, engine, results, seconds, cpu, in_db)
    return 0


if __name__ == "__main__":
    sys.exit(main())
