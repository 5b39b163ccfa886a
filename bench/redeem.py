"""Online-redeem benchmark: 50 concurrent kiosk clients against the real server and SQLite file.

    python -m bench.redeem [--n 20000] [--clients 50] [--replays 0.05] [--tickets 200000]

Seeds ``--tickets`` printed tickets, starts the real server as a subprocess, enrols kiosks, and
from a separate load-generator process sends ``--n`` redeems of distinct valid codes plus
``--replays`` × n replays (an already redeemed code under a new scan id, as a second truck with
a photocopy would), ``--clients`` requests in flight at any time. Latency is measured per
request by the client. double-accepts counts tickets accepted more than once, from the answers
and from the database; it must be 0. Targets: ≥ 2000 req/s, p99 ≤ 25 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from bench.seed import seed_tickets, signed_codes
from bench.server_process import cpu_seconds, enrol_kiosk, server_process

KIOSKS = 5
WARM_UP = 1000


class _Connection:
    """One keep-alive HTTP/1.1 connection speaking just enough HTTP for this benchmark.

    aiohttp's client costs ~400 µs of CPU per request on this box, as much as the server's own
    work; on two cores that would measure the load generator. This costs a fraction of it.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, token: str) -> None:
        self.reader, self.writer = reader, writer
        self.head = (
            f"POST /api/v1/gate/redeem HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()

    async def post(self, body: bytes) -> tuple[int, dict]:
        self.writer.write(self.head + str(len(body)).encode() + b"\r\n\r\n" + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, json.loads(await self.reader.readexactly(length))


async def _load(base: str, tokens: list[str], codes: list[str], clients: int) -> tuple[list, float]:
    """Send every code once, ``clients`` at a time; returns [(ms, ticket_id, accepted, reason)], seconds."""
    results: list[tuple[float, int | None, bool, str]] = []
    position = 0
    host = base.removeprefix("http://")
    address, port = host.split(":")
    connections = []
    for number in range(clients):
        reader, writer = await asyncio.open_connection(address, int(port))
        connections.append(_Connection(reader, writer, host, tokens[number % len(tokens)]))

    async def client(connection: _Connection) -> None:
        nonlocal position
        while position < len(codes):
            code = codes[position]
            position += 1
            body = json.dumps(
                {"scan_id": str(uuid.uuid4()), "code": code, "scanned_at": datetime.now(UTC).isoformat()}
            ).encode()
            started = time.perf_counter()
            status, answer = await connection.post(body)
            elapsed = (time.perf_counter() - started) * 1000
            if status != 200:
                raise RuntimeError(f"redeem answered {status}: {answer}")
            results.append((elapsed, answer["ticket_id"], answer["accepted"], answer["reason"]))

    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in connections))
    seconds = time.perf_counter() - started
    for connection in connections:
        connection.writer.close()
    return results, seconds


def _load_generator(base: str, tokens: list[str], warm_up: list[str], codes: list[str], clients: int, queue) -> None:
    """The load generator's process: warm up, then the measured run; results go back on ``queue``."""
    asyncio.run(_load(base, tokens, warm_up, clients))
    queue.put("measuring")
    queue.put(asyncio.run(_load(base, tokens, codes, clients)))


def _plan(codes: list[str], replay_share: float, rng: random.Random) -> list[str]:
    """Distinct codes in random order, with replays of earlier codes mixed in after their first use."""
    order = codes[:]
    rng.shuffle(order)
    plan = list(order)
    for _ in range(int(len(order) * replay_share)):
        original = rng.randrange(len(order) // 2)
        plan.insert(rng.randrange(original + 200, len(plan) + 1), order[original])
    return plan


def _double_accepts_in_db(db_path: Path) -> int:
    with sqlite3.connect(db_path) as conn:
        return conn.execute(
            "SELECT COUNT(*) FROM (SELECT ticket_id FROM scans WHERE accepted = 1 GROUP BY ticket_id "
            "HAVING COUNT(*) > 1)"
        ).fetchone()[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.redeem", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="distinct codes redeemed (default 20,000)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--replays", type=float, default=0.05, help="share of replayed codes (default 0.05)")
    parser.add_argument("--tickets", type=int, default=200_000, help="tickets in the database (default 200,000)")
    parser.add_argument("--seed", type=int, default=1, help="random seed for the request order")
    args = parser.parse_args(argv)
    if args.n < 400:
        parser.error("--n must be at least 400")
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="pg-bench-redeem-") as tmp:
        data_dir = Path(tmp) / "data"
        db_path = data_dir / "portgate.db"
        total = max(args.tickets, args.n + WARM_UP)
        seeded = seed_tickets(db_path, total, companies=50, itineraries=20)
        ids = rng.sample(range(seeded.first_ticket_id, seeded.last_ticket_id + 1), args.n + WARM_UP)
        codes = signed_codes(db_path, ids)
        warm_up = [codes[i] for i in ids[:WARM_UP]]
        plan = _plan([codes[i] for i in ids[WARM_UP:]], args.replays, rng)
        print(f"seeded {total} tickets in {seeded.seconds:.1f} s; {len(plan)} redeems planned", file=sys.stderr)
        with server_process(data_dir) as (base, server):
            tokens = [enrol_kiosk(base, db_path, f"bench-kiosk-{i}") for i in range(KIOSKS)]
            context = multiprocessing.get_context("spawn")
            queue = context.Queue()
            generator = context.Process(target=_load_generator, args=(base, tokens, warm_up, plan, args.clients, queue))
            generator.start()
            assert queue.get() == "measuring"
            cpu_before = cpu_seconds(server)
            results, seconds = queue.get()
            server_cpu = cpu_seconds(server) - cpu_before
            generator.join()
        in_db = _double_accepts_in_db(db_path)
    latencies = sorted(r[0] for r in results)
    accepted = Counter(r[1] for r in results if r[2])
    reasons = Counter(r[3] for r in results)
    double = max(sum(1 for n in accepted.values() if n > 1), in_db)
    rate = len(results) / seconds
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"{len(results)} redeems in {seconds:.2f} s; p50 {p50:.1f} ms; reasons {dict(reasons)}")
    # Throughput depends on what else runs on the box; the server's CPU per redeem does not.
    print(
        f"server CPU {server_cpu / len(results) * 1e6:.0f} µs per redeem "
        f"({server_cpu / seconds * 100:.0f}% of one core); load average {os.getloadavg()[0]:.1f}"
    )
    print(f"redeem: {rate:.0f} req/s, p99 {p99:.1f} ms, double-accepts {double}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
