"""Portal pages on a big port: the customer's ticket lists, the supervisor's scan log, the staff lists.

    python -m bench.portal [--n 1000000] [--companies 100000] [--purchases 100000] [--requests 300]

Seeds ``--n`` tickets (20 customer companies) and as many scans into a real SQLite file, starts the
real server, signs in through the login form like a person, then times page loads over HTTP:
the customer's Tickets page, an itinerary's ticket list at random depths (keyset pages), and the
supervisor's scan log with and without filters (kiosk, refusals, reason, older pages, one ticket's
scans by its code). Then billing's and operations' lists over ``--companies`` companies and
``--purchases`` purchases: purchases (first page, searches, a status, older pages), the purchase
form's company picker, itineraries and services. Last lines: ``portal: p95 <X> ms at <N> tickets``
and ``staff lists: p95 <X> ms at <C> companies, <P> purchases, <N> tickets``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from bench.seed import seed_registry, seed_tickets
from bench.server_process import running_server
from server.db import connect
from server.demo import DEMO_PASSWORD
from server.security import hash_password


def add_people_and_scans(db_path: Path, company_id: int, scans: int) -> None:
    """A customer user of one bench company, a gate supervisor, a kiosk and ``scans`` logged scans."""
    db = connect(db_path)
    conn = db.conn
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN IMMEDIATE")
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    password = hash_password(DEMO_PASSWORD)
    operator = conn.execute(
        "INSERT INTO companies (tax_id, name, emails, kind, created_at) VALUES "
        "('0990000001001', 'Terminal', '[]', 'operator', ?)",
        (stamp,),
    ).lastrowid
    for username, company, role in (("cliente", company_id, "customer"), ("supervisor", operator, "gate_supervisor")):
        user = conn.execute(
            "INSERT INTO users (username, email, full_name, password_hash, status, created_at) "
            "VALUES (?, ?, ?, ?, 'active', ?)",
            (username, f"{username}@bench.example", username, password, stamp),
        ).lastrowid
        conn.execute("INSERT INTO profiles (user_id, company_id, role) VALUES (?, ?, ?)", (user, company, role))
    kiosks = [
        conn.execute(
            "INSERT INTO kiosks (name, gate, status, created_at) VALUES (?, 'G', 'active', ?)", (f"Garita {i}", stamp)
        ).lastrowid
        for i in range(4)
    ]
    reasons = ["accepted"] * 8 + ["already_used", "forged", "not_printed", "unknown"]
    start = datetime.now(UTC) - timedelta(days=30)
    step = timedelta(days=30) / max(scans, 1)
    rows = []
    for i in range(scans):
        at = (start + step * i).isoformat(timespec="milliseconds")
        reason = reasons[i % len(reasons)]
        rows.append(
            (
                f"bench-{i:09d}",
                kiosks[i % 4],
                1 + i % 1000,
                company_id,
                f"{i:020d}",
                at,
                at,
                "online",
                int(reason == "accepted"),
                reason,
            )
        )
        if len(rows) == 100_000:
            _insert_scans(conn, rows)
            rows.clear()
    _insert_scans(conn, rows)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


def _insert_scans(conn, rows) -> None:  # noqa: ANN001
    conn.executemany(
        "INSERT INTO scans (scan_id, kiosk_id, ticket_id, company_id, code, scanned_at, received_at, "
        "mode, accepted, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def add_staff(db_path: Path) -> None:
    """A billing clerk and an operations user at the operator company (made by ``add_people_and_scans``)."""
    conn = connect(db_path).conn
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    operator = conn.execute("SELECT id FROM companies WHERE kind = 'operator'").fetchone()[0]
    password = hash_password(DEMO_PASSWORD)
    for username, role in (("facturacion", "billing_clerk"), ("operaciones", "operations")):
        user = conn.execute(
            "INSERT INTO users (username, email, full_name, password_hash, status, created_at) "
            "VALUES (?, ?, ?, ?, 'active', ?)",
            (username, f"{username}@bench.example", username, password, stamp),
        ).lastrowid
        conn.execute("INSERT INTO profiles (user_id, company_id, role) VALUES (?, ?, ?)", (user, operator, role))
    conn.commit()
    conn.close()


def staff_paths(rng: random.Random, last_purchase: int) -> list[tuple[str, str]]:
    """(user, path) of one round over the staff lists, searches that match few and many rows among them."""
    word = rng.choice(["andina", "costa", "delta", "norte", "sierra"])
    return [
        ("facturacion", "/billing/purchases"),
        ("facturacion", f"/billing/purchases?q={word}"),
        ("facturacion", f"/billing/purchases?q=R{rng.randrange(100_000):012d}"),
        ("facturacion", f"/billing/purchases?q=VEN-{rng.randrange(100_000):08d}"),
        ("facturacion", "/billing/purchases?status=pending"),
        ("facturacion", f"/billing/purchases?after={rng.randrange(1, last_purchase)}"),
        ("facturacion", f"/billing/purchases/companies?q={word} {rng.choice(['p', 'co', 'n'])}"),
        ("facturacion", f"/billing/purchases/companies?q=R{rng.randrange(100_000):06d}"),
        ("operaciones", "/ops/itineraries"),
        ("operaciones", f"/ops/itineraries?q={word}&status=open"),
        ("operaciones", "/ops/services?status=open"),
    ]


async def measure_staff(base: str, rounds: int, last_purchase: int) -> list[float]:
    from tests.stack import PortalUser

    users = {name: PortalUser(base) for name in ("facturacion", "operaciones")}
    rng = random.Random(9)
    timings: list[float] = []
    try:
        for name, user in users.items():
            await user.login(name)
        for _ in range(rounds):
            for name, path in staff_paths(rng, last_purchase):
                started = time.perf_counter()
                async with users[name].session.get(path) as resp:
                    await resp.read()
                    assert resp.status == 200, (path, resp.status)
                timings.append((time.perf_counter() - started) * 1000)
    finally:
        for user in users.values():
            await user.close()
    return timings


async def measure(
    base: str, company_id: int, itineraries: list[int], max_ticket: int, requests: int, short_codes: list[str]
) -> list[float]:
    from tests.stack import PortalUser

    customer, supervisor = PortalUser(base), PortalUser(base)
    await customer.login("cliente")
    await supervisor.login("supervisor")
    rng = random.Random(5)
    paths_customer = ["/tickets"] + [f"/tickets/itinerary/{i}" for i in itineraries]
    timings: list[float] = []
    try:
        for i in range(requests):
            kind = i % 4
            if kind == 0:
                user, path = customer, rng.choice(paths_customer)
            elif kind == 1:
                user = customer
                path = f"/tickets/itinerary/{rng.choice(itineraries)}?after={rng.randrange(max_ticket)}"
            elif kind == 2:
                user, path = supervisor, "/gate/scans"
            else:
                user = supervisor
                path = rng.choice(
                    [
                        "/gate/scans?accepted=0",
                        "/gate/scans?reason=forged",
                        f"/gate/scans?before={rng.randrange(1, 900_000)}",
                        "/gate/scans?kiosk=2",
                        f"/gate/scans?code={rng.choice(short_codes)}",  # a supervisor looks up one ticket
                        "/gate/kiosks",
                    ]
                )
            started = time.perf_counter()
            async with user.session.get(path) as resp:
                await resp.read()
                assert resp.status == 200, (path, resp.status)
            timings.append((time.perf_counter() - started) * 1000)
    finally:
        await customer.close()
        await supervisor.close()
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="tickets (and scans) to seed")
    parser.add_argument("--companies", type=int, default=100_000, help="billing registry companies to seed")
    parser.add_argument("--purchases", type=int, default=100_000, help="purchases to seed")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="portgate-bench-portal-") as tmp:
        data = Path(tmp)
        db_path = data / "portgate.db"
        started = time.perf_counter()
        seeded = seed_tickets(db_path, args.n, companies=20, itineraries=10)
        add_people_and_scans(db_path, seeded.company_ids[0], args.n)
        seed_registry(db_path, args.companies, args.purchases)
        add_staff(db_path)
        conn = connect(db_path).conn
        itineraries = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT itinerary_id FROM generations WHERE company_id = ?", (seeded.company_ids[0],)
            )
        ]
        rng = random.Random(7)
        sample = [rng.randrange(seeded.first_ticket_id, seeded.last_ticket_id + 1) for _ in range(50)]
        short_codes = [
            r[0] for r in conn.execute(f"SELECT short_code FROM tickets WHERE id IN ({','.join('?' * 50)})", sample)
        ]
        last_purchase = conn.execute("SELECT MAX(id) FROM purchases").fetchone()[0]
        conn.close()
        print(
            f"seeded {args.n} tickets, {args.n} scans, {args.companies} companies and {args.purchases} purchases "
            f"in {time.perf_counter() - started:.1f} s"
        )
        with running_server(data) as base:
            timings = asyncio.run(
                measure(base, seeded.company_ids[0], itineraries, seeded.last_ticket_id, args.requests, short_codes)
            )
            staff = asyncio.run(measure_staff(base, max(args.requests // 11, 1), last_purchase))
    print(f"median {statistics.median(timings):.1f} ms, max {max(timings):.1f} ms over {len(timings)} pages")
    print(f"portal: p95 {float(np.percentile(timings, 95)):.1f} ms at {args.n} tickets")
    print(f"staff lists: median {statistics.median(staff):.1f} ms, max {max(staff):.1f} ms over {len(staff)} pages")
    print(
        f"staff lists: p95 {float(np.percentile(staff, 95)):.1f} ms at {args.companies} companies, "
        f"{args.purchases} purchases, {args.n} tickets"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
