"""Portal pages on a big port: the customer's ticket lists, the supervisor's scan log, every staff list.

    python -m bench.portal [--n 1000000] [--companies 100000] [--purchases 100000] [--users 2000]
                           [--audit 200000] [--kiosks 50] [--conflicts 2000] [--requests 300]

Seeds ``--n`` tickets (20 customer companies) and as many scans into a real SQLite file, starts the
real server, signs in through the login form like a person, then times page loads over HTTP:
the customer's Tickets page, an itinerary's ticket list at random depths (keyset pages), and the
supervisor's scan log with and without filters (kiosk, refusals, reason, older pages, one ticket's
scans by its code). Then every staff list over ``--companies`` companies, ``--purchases`` purchases,
``--users`` accounts, ``--audit`` audit entries, ``--kiosks`` kiosks and ``--conflicts`` conflicts:
purchases (first page, searches, a status, older pages), the purchase form's company picker,
itineraries and services; the billing registry (first page, name prefixes, deep pages), the audit
log (first page, by event, by user, a week, deep pages), the user list (first page, searches, a role,
deep pages), kiosks and conflicts; and the same lists, and the scan log, through the staff API with
the administrator's bearer token. Prints each list's p95, then last lines
``portal: p95 <X> ms at <N> tickets``, ``staff lists: p95 <X> ms at <C> companies, <P> purchases,
<N> tickets`` (purchases and catalogue, as first measured) and ``all staff lists: p95 <X> ms (worst
<list> <Y> ms) at <C> companies, <P> purchases, <N> tickets, <S> scans``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import aiohttp
import numpy as np

from bench.seed import seed_registry, seed_staff_lists, seed_tickets
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
    """A billing clerk, an operations user and an administrator at the operator company (made by
    ``add_people_and_scans``)."""
    conn = connect(db_path).conn
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    operator = conn.execute("SELECT id FROM companies WHERE kind = 'operator'").fetchone()[0]
    password = hash_password(DEMO_PASSWORD)
    for username, role in (("facturacion", "billing_clerk"), ("operaciones", "operations"), ("admin", "admin")):
        user = conn.execute(
            "INSERT INTO users (username, email, full_name, password_hash, status, created_at) "
            "VALUES (?, ?, ?, ?, 'active', ?)",
            (username, f"{username}@bench.example", username, password, stamp),
        ).lastrowid
        conn.execute("INSERT INTO profiles (user_id, company_id, role) VALUES (?, ?, ?)", (user, operator, role))
    conn.commit()
    conn.close()


@dataclass(frozen=True)
class StaffData:
    """The ids the staff lists' deep pages and filters pick from."""

    last_purchase: int
    registry: tuple[int, int]  # first and last id of the billing registry's companies
    users: tuple[int, int]  # first and last id of the seeded accounts
    audit_ids: tuple[int, int]
    scans: int

    @classmethod
    def read(cls, db_path: Path) -> StaffData:
        conn = connect(db_path).conn
        try:

            def span(sql: str) -> tuple[int, int]:
                low, high = conn.execute(sql).fetchone()
                return low or 1, high or 1

            return cls(
                last_purchase=conn.execute("SELECT MAX(id) FROM purchases").fetchone()[0],
                registry=span("SELECT MIN(id), MAX(id) FROM companies WHERE tax_id LIKE 'R%'"),
                users=span("SELECT MIN(id), MAX(id) FROM users WHERE username LIKE 'usuario%'"),
                audit_ids=span("SELECT MIN(id), MAX(id) FROM audit_log"),
                scans=conn.execute("SELECT MAX(id) FROM scans").fetchone()[0] or 1,
            )
        finally:
            conn.close()


#: The lists ``staff lists: p95`` has covered since it was first measured (purchases and the catalogue).
PURCHASE_AND_CATALOGUE_LISTS = (
    "/billing/purchases",
    "/billing/purchases/companies",
    "/ops/itineraries",
    "/ops/services",
)


def _between(rng: random.Random, span: tuple[int, int]) -> int:
    return rng.randint(*span)


def staff_paths(rng: random.Random, data: StaffData) -> list[tuple[str, str]]:
    """(user, path) of one round over every staff list: first pages, searches that match few and many
    rows, filters, deep pages. ``api`` is the administrator's API session (a bearer token)."""
    word = rng.choice(["andina", "costa", "delta", "norte", "sierra"])
    name = rng.choice(["Andina Costa", "Puerto Delta", "Norte Sierra", "Pacifico Austral"])
    event = rng.choice(["login.ok", "ticket.printed", "purchase.confirmed", "kiosk.revoked"])
    user = _between(rng, data.users)
    username = f"usuario{user - data.users[0]:05d}"
    surname = rng.choice(["Alvarado", "Duran", "Ibarra"])
    role = rng.choice(["billing_clerk", "customer_admin", "customer"])
    # A week, and a month: the log reads every entry of the range to sort it newest first.
    first_day = date.today() - timedelta(days=rng.randrange(31, 360))
    week = f"from={first_day}&to={first_day + timedelta(days=6)}"
    month = f"from={first_day}&to={first_day + timedelta(days=30)}"
    tax_id = f"R{_between(rng, data.registry) - data.registry[0]:012d}"
    return [
        ("facturacion", "/billing/purchases"),
        ("facturacion", f"/billing/purchases?q={word}"),
        ("facturacion", f"/billing/purchases?q=R{rng.randrange(100_000):012d}"),
        ("facturacion", f"/billing/purchases?q=VEN-{rng.randrange(100_000):08d}"),
        ("facturacion", "/billing/purchases?status=pending"),
        ("facturacion", f"/billing/purchases?after={rng.randrange(1, data.last_purchase)}"),
        ("facturacion", f"/billing/purchases/companies?q={word} {rng.choice(['p', 'co', 'n'])}"),
        ("facturacion", f"/billing/purchases/companies?q=R{rng.randrange(100_000):06d}"),
        ("operaciones", "/ops/itineraries"),
        ("operaciones", f"/ops/itineraries?q={word}&status=open"),
        ("operaciones", "/ops/services?status=open"),
        ("facturacion", "/billing/companies"),
        ("facturacion", f"/billing/companies?q={word}"),
        ("facturacion", f"/billing/companies?q={name}"),
        ("facturacion", f"/billing/companies?q={tax_id}"),
        ("facturacion", f"/billing/companies?after={_between(rng, data.registry)}"),
        ("admin", "/admin/audit"),
        ("admin", f"/admin/audit?event={event}"),
        ("admin", f"/admin/audit?username={username}"),
        ("admin", f"/admin/audit?{week}"),
        ("admin", f"/admin/audit?{month}"),
        ("admin", f"/admin/audit?after={_between(rng, data.audit_ids)}"),
        ("admin", "/admin/users"),
        ("admin", f"/admin/users?q={surname}"),
        ("admin", f"/admin/users?q={username}"),
        ("admin", f"/admin/users?role={role}"),
        ("admin", f"/admin/users?after={_between(rng, data.users)}"),
        ("supervisor", "/gate/kiosks"),
        ("supervisor", "/gate/kiosks?status=active"),
        ("supervisor", "/gate/conflicts"),
        ("supervisor", "/gate/conflicts?status=resolved"),
        ("api", "/api/v1/billing/companies"),
        ("api", f"/api/v1/billing/companies?q={word}"),
        ("api", f"/api/v1/billing/companies?after={_between(rng, data.registry)}"),
        ("api", "/api/v1/admin/audit"),
        ("api", f"/api/v1/admin/audit?event={event}"),
        ("api", f"/api/v1/admin/audit?user_id={user}"),
        ("api", f"/api/v1/admin/audit?{week}"),
        ("api", f"/api/v1/admin/audit?{month}"),
        ("api", f"/api/v1/admin/audit?after={_between(rng, data.audit_ids)}"),
        ("api", "/api/v1/admin/users"),
        ("api", f"/api/v1/admin/users?q={surname}"),
        ("api", f"/api/v1/admin/users?role={role}"),
        ("api", f"/api/v1/admin/users?after={_between(rng, data.users)}"),
        ("api", "/api/v1/scans"),
        ("api", "/api/v1/scans?accepted=0"),
        ("api", f"/api/v1/scans?before={rng.randrange(2, data.scans)}"),
        ("api", "/api/v1/kiosks"),
        ("api", "/api/v1/conflicts"),
        ("api", "/api/v1/conflicts?status=all"),
    ]


async def _api_session(base: str, username: str) -> aiohttp.ClientSession:
    """A client of the JSON API holding ``username``'s bearer token, got by signing in through the API."""
    from tests.helpers import api_token, bearer

    async with aiohttp.ClientSession(base_url=base) as client:
        token = await api_token(client, username)
    return aiohttp.ClientSession(base_url=base, headers=bearer(token))


async def measure_staff(base: str, rounds: int, data: StaffData) -> dict[str, list[tuple[float, str]]]:
    """Each staff list's page loads (ms, path), by list (the path without its query)."""
    from tests.stack import PortalUser

    people = {name: PortalUser(base) for name in ("facturacion", "operaciones", "admin", "supervisor")}
    rng = random.Random(9)
    timings: dict[str, list[tuple[float, str]]] = {}
    api = None
    try:
        for name, person in people.items():
            await person.login(name)
        api = await _api_session(base, "admin")
        sessions = {name: person.session for name, person in people.items()} | {"api": api}
        for _ in range(rounds):
            for name, path in staff_paths(rng, data):
                started = time.perf_counter()
                async with sessions[name].get(path) as resp:
                    await resp.read()
                    assert resp.status == 200, (path, resp.status)
                elapsed = (time.perf_counter() - started) * 1000
                timings.setdefault(path.split("?")[0], []).append((elapsed, path))
    finally:
        for person in people.values():
            await person.close()
        if api is not None:
            await api.close()
    return timings


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95))


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
    parser.add_argument("--users", type=int, default=2_000, help="user accounts (with profiles) to seed")
    parser.add_argument("--audit", type=int, default=200_000, help="audit log entries to seed")
    parser.add_argument("--kiosks", type=int, default=50, help="kiosks to seed")
    parser.add_argument("--conflicts", type=int, default=2_000, help="scan conflicts to seed")
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
        seed_staff_lists(db_path, users=args.users, audit=args.audit, kiosks=args.kiosks, conflicts=args.conflicts)
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
        conn.close()
        staff_data = StaffData.read(db_path)
        print(
            f"seeded {args.n} tickets, {args.n} scans, {args.companies} companies, {args.purchases} purchases, "
            f"{args.users} users, {args.audit} audit entries, {args.kiosks} kiosks and {args.conflicts} conflicts "
            f"in {time.perf_counter() - started:.1f} s"
        )
        with running_server(data) as base:
            timings = asyncio.run(
                measure(base, seeded.company_ids[0], itineraries, seeded.last_ticket_id, args.requests, short_codes)
            )
            by_list = asyncio.run(measure_staff(base, max(args.requests // 11, 1), staff_data))
    lists = {name: [ms for ms, _path in pages] for name, pages in by_list.items()}
    for name, pages in by_list.items():
        slowest, path = max(pages)
        print(f"  {name}: p95 {p95(lists[name]):.1f} ms over {len(pages)} pages, slowest {slowest:.1f} ms ({path})")
    staff = [ms for name in PURCHASE_AND_CATALOGUE_LISTS for ms in lists[name]]
    every = [ms for values in lists.values() for ms in values]
    worst = max(lists, key=lambda name: p95(lists[name]))
    print(f"median {statistics.median(timings):.1f} ms, max {max(timings):.1f} ms over {len(timings)} pages")
    print(f"portal: p95 {p95(timings):.1f} ms at {args.n} tickets")
    print(f"staff lists: median {statistics.median(staff):.1f} ms, max {max(staff):.1f} ms over {len(staff)} pages")
    print(
        f"staff lists: p95 {p95(staff):.1f} ms at {args.companies} companies, "
        f"{args.purchases} purchases, {args.n} tickets"
    )
    print(
        f"all staff lists: p95 {p95(every):.1f} ms (worst {worst} {p95(lists[worst]):.1f} ms) at "
        f"{args.companies} companies, {args.purchases} purchases, {args.n} tickets, {args.n} scans"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
