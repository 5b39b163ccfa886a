"""Kiosk delta-sync benchmark: a first full sync of a big port, then a delta of 1000 changes.

    python -m bench.sync [--database-url URL] [--n 1000000] [--used 0.3] [--page 50000] [--changes 1000]

Seeds ``--n`` printed tickets into a fresh database, of which a share ``--used`` already used
at the gate (as redeems record it: a use number of its own), starts the real server as a
subprocess and syncs through the HTTP API like a kiosk (gzip, cursor pages), timing until the
last page is parsed; every ticket must come exactly once. Bytes are the compressed response
bodies. Then ``--changes`` unused tickets are deleted (as the portal does: new sync number each)
and the delta sync is timed; the median of 3 rounds.
Targets: full sync ≤ 20 s, ≤ 120 bytes/ticket, delta ≤ 100 ms.

``--database-url``: empty (a temp SQLite file), ``sqlite:///…``, ``postgresql://user@host/db`` (an
empty database you made for it), or ``postgresql`` alone: a throwaway cluster (Debian's PostgreSQL
binaries, a temp dir, a free port; see tests/pgcluster.py) started for the run and removed after.
The last line names the engine: ``sync[postgresql]: …``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gzip
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from bench.seed import seed_tickets
from bench.server_process import cpu_seconds, enrol_kiosk, server_process
from server.db import direct_connection, is_postgresql

ROUNDS = 3


async def _sync(session: aiohttp.ClientSession, base: str, token: str, cursor: int, page: int) -> tuple:
    """Follow the cursor to the end; returns (tickets, wire bytes, pages, final cursor)."""
    headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"}
    tickets = wire = pages = 0
    while True:
        async with session.get(
            f"{base}/api/v1/gate/sync", params={"cursor": cursor, "limit": page}, headers=headers
        ) as resp:
            resp.raise_for_status()
            raw = await resp.read()
            encoded = resp.headers.get("Content-Encoding") == "gzip"
        wire += len(raw)
        body = json.loads(gzip.decompress(raw) if encoded else raw)
        tickets += len(body["tickets"])
        pages += 1
        cursor = body["cursor"]
        if not body["has_more"]:
            return tickets, wire, pages, cursor


def _numbered_update(database_url: str, sql: str, ticket_ids: list[int]) -> None:
    """``sql`` (parameters: a time, a fresh sync number, the ticket id) for many tickets in one
    transaction, numbered as the server numbers changes."""
    with direct_connection(database_url) as db:
        db.execute(db.dialect.begin)
        start = db.execute("SELECT value FROM sync_counter WHERE id = 1").fetchone()[0]
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
        db.executemany(sql, [(stamp, start + i + 1, ticket_id) for i, ticket_id in enumerate(ticket_ids)])
        db.execute("UPDATE sync_counter SET value = ? WHERE id = 1", (start + len(ticket_ids),))
        db.execute("COMMIT")


def _delete_some(database_url: str, ticket_ids: list[int]) -> None:
    """What ``delete_ticket`` does to the rows kiosks sync."""
    _numbered_update(database_url, "UPDATE tickets SET deleted_at = ?, sync_seq = ? WHERE id = ?", ticket_ids)


def _use_some(database_url: str, ticket_ids: list[int]) -> None:
    """What a redeem does to the rows kiosks sync (``redeem._record_use``)."""
    _numbered_update(database_url, "UPDATE tickets SET used_at = ?, used_seq = ? WHERE id = ?", ticket_ids)


def _vacuum_analyze(database_url: str) -> None:
    """What autovacuum does within a minute of a bulk load (statistics for the planner, dead rows of
    the uses' updates gone): measured before it, the sync would measure a state that lasts a minute."""
    with direct_connection(database_url) as db:
        db.execute("VACUUM ANALYZE tickets")


@contextlib.contextmanager
def database(given: str, data_dir: Path) -> Iterator[tuple[str, Callable[[], float] | None]]:
    """The URL to seed and serve: as given, a temp SQLite file, or a throwaway cluster's database;
    with the throwaway cluster, a function giving the CPU time its processes used so far."""
    if given and given.rstrip(":/") not in ("postgresql", "postgres"):
        yield given, None
        return
    if not given:
        yield f"sqlite://{data_dir.absolute() / 'portgate.db'}", None
        return
    from tests.pgcluster import PgCluster  # Debian's binaries; only when asked for

    cluster = PgCluster.start()  # its own temp dir, which the cluster's user can reach
    try:
        yield cluster.create_database("bench_sync"), functools.partial(_tree_cpu, cluster.proc.pid)
    finally:
        cluster.stop()


def _tree_cpu(root: int) -> float:
    """CPU seconds of a process and its descendants, with the children they reaped (PostgreSQL's
    backends are its postmaster's children: those that ended count in its reaped children's time)."""
    stats = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            stats[int(stat.parent.name)] = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
    children: dict[int, list[int]] = {}
    for pid, fields in stats.items():
        children.setdefault(int(fields[1]), []).append(pid)
    ticks, todo = 0, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            ticks += sum(int(value) for value in stats[pid][11:15])  # utime, stime, cutime, cstime
        todo.extend(children.get(pid, []))
    return ticks / os.sysconf("SC_CLK_TCK")


async def _measure(base: str, token: str, db_url: str, args: argparse.Namespace, unused: list[int], cpu) -> dict:  # noqa: ANN001
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(auto_decompress=False, timeout=timeout) as session:
        cpu_before = cpu()
        started = time.perf_counter()
        tickets, wire, pages, cursor = await _sync(session, base, token, 0, args.page)
        full_seconds = time.perf_counter() - started
        full_cpu = [after - before for after, before in zip(cpu(), cpu_before, strict=True)]
        deltas = []
        untouched = unused  # in random order already
        for round_ in range(ROUNDS):
            changed = untouched[round_ * args.changes : (round_ + 1) * args.changes]
            _delete_some(db_url, changed)
            started = time.perf_counter()
            seen, _wire, _pages, cursor = await _sync(session, base, token, cursor, args.page)
            deltas.append((time.perf_counter() - started) * 1000)
            if seen != len(changed):
                raise SystemExit(f"delta returned {seen} tickets, expected {len(changed)}")
    return {
        "tickets": tickets,
        "wire": wire,
        "pages": pages,
        "full_s": full_seconds,
        "full_cpu": full_cpu,
        "deltas_ms": deltas,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sync", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default="",
        help="sqlite:///path, postgresql://… (an empty database) or 'postgresql' alone for a throwaway cluster "
        "(default: a temp SQLite file)",
    )
    parser.add_argument("--n", type=int, default=1_000_000, help="tickets to seed (default 1,000,000)")
    parser.add_argument("--used", type=float, default=0.3, help="share of tickets already used (default 0.3)")
    parser.add_argument("--page", type=int, default=50_000, help="tickets per sync page (default 50,000)")
    parser.add_argument("--changes", type=int, default=1000, help="tickets changed before the delta (default 1000)")
    args = parser.parse_args(argv)
    if not 0 <= args.used < 1:
        parser.error("--used must be at least 0 and below 1")
    if args.n * (1 - args.used) < args.changes * ROUNDS:
        parser.error(f"--n must leave at least {args.changes * ROUNDS} unused tickets")
    with (
        tempfile.TemporaryDirectory(prefix="pg-bench-sync-") as tmp,
        database(args.database_url, Path(tmp) / "data") as (url, database_cpu),
    ):
        engine = "postgresql" if is_postgresql(url) else "sqlite"
        data_dir = Path(tmp) / "data"
        seeded = seed_tickets(url, args.n, companies=50, itineraries=20)
        ids = list(range(seeded.first_ticket_id, seeded.last_ticket_id + 1))
        random.shuffle(ids)
        used = int(len(ids) * args.used)
        started = time.perf_counter()
        _use_some(url, ids[:used])  # in random order, after printing: as uses come at the gate
        if engine == "postgresql":
            _vacuum_analyze(url)
        print(
            f"seeded {args.n} tickets in {seeded.seconds:.1f} s, {used} used in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
        with server_process(data_dir, database_url=url) as (base, server):
            token = enrol_kiosk(base, url, "bench-sync")

            def cpu() -> tuple[float, float, float]:
                return cpu_seconds(server), database_cpu() if database_cpu else 0.0, time.process_time()

            result = asyncio.run(_measure(base, token, url, args, ids[used:], cpu))
    if result["tickets"] != args.n:
        raise SystemExit(f"full sync returned {result['tickets']} tickets, expected {args.n}")
    per_ticket = result["wire"] / result["tickets"]
    delta = statistics.median(result["deltas_ms"])
    print(
        f"full sync: {result['pages']} pages, {result['wire'] / 1e6:.1f} MB on the wire; "
        f"delta rounds (ms): {', '.join(f'{d:.1f}' for d in result['deltas_ms'])}"
    )
    server_cpu, db_cpu, client_cpu = result["full_cpu"]
    in_database = f", database {db_cpu:.1f} s" if database_cpu else ""
    # Wall time depends on what else runs on the box; the CPU a full sync costs does not.
    print(
        f"full sync CPU: server {server_cpu:.1f} s{in_database}, client {client_cpu:.1f} s; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"sync[{engine}]: full {result['tickets']} tickets {result['full_s']:.1f} s, {per_ticket:.0f} bytes/ticket, "
        f"delta {args.changes} changes {delta:.0f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
