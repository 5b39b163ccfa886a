"""Fast seeding of a Portgate database with many gate tickets, for the benchmarks.

    from bench.seed import seed_tickets
    result = seed_tickets(db_path_or_url, 1_000_000, companies=50, itineraries=20)

``seed_tickets``, ``ensure_gate_licence`` and ``signed_codes`` take a SQLite path or any
``database_url`` (``postgresql://…`` too); the registry and staff-list seeders are SQLite's.

Rows are consistent with the schema and with what the service layer writes (companies,
confirmed purchases and balances, open itineraries, generations, printed tickets with unique
short codes and sync numbers), but inserted with ``executemany`` in one transaction: the
service layer would take minutes for a million tickets. Codes are not stored (they are derived
by signing); use :func:`signed_codes` for the tickets a benchmark scans. Printed tickets get
the digest of their code that printing stores (signing them takes most of the seeding time,
spread over every core).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import secrets
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import server.app  # noqa: F401, I001 - loads the areas in the app's order (accounts -> gate -> tickets is a cycle otherwise)
from gate_core.codes import SigningKey, issue_code
from server.db import Database, connect, direct_connection
from server.sql import POSTGRESQL, Connection
from server.tickets.service import KeyRing, code_check, code_for, ensure_signing_key, load_keys

TICKETS_PER_GENERATION = 1000
_INSERT_CHUNK = 100_000


@dataclass(frozen=True)
class SeedResult:
    first_ticket_id: int
    last_ticket_id: int
    itinerary_ids: list[int]
    company_ids: list[int]
    seconds: float


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="minutes")


def migrate(db_path: str | Path) -> None:
    """Create or upgrade the schema and the first signing key (what the server does at start)."""
    database = Database(db_path, readers=1)
    try:
        database.migrate()
        database.write_sync(ensure_signing_key, now=datetime.now(UTC))
    finally:
        database.close()


def ensure_gate_licence(db_path: str | Path, machines: int = 100) -> None:
    """An operator company with a licence serial for gate kiosks, so benchmark kiosks can enrol."""
    from server.helpdesk import licences

    with direct_connection(db_path) as db:
        db.execute(db.dialect.begin)
        now = datetime.now(UTC)
        if licences.gate_serial(db, now.date()) is None:
            operator = db.execute("SELECT id FROM companies WHERE kind = 'operator' ORDER BY id").fetchone()
            operator_id = (
                operator[0]
                if operator
                else db.execute(
                    "INSERT INTO companies (tax_id, name, kind, created_at) VALUES ('B-OPERATOR', "
                    "'Bench Terminal', 'operator', ?) RETURNING id",
                    (now.isoformat(timespec="seconds"),),
                ).fetchone()[0]
            )
            values = {
                "company_id": operator_id,
                "serial": "",
                "system": licences.GATE_SYSTEM,
                "description": "Benchmark gate kiosks",
                "valid_until": (now.date() + timedelta(days=365)).isoformat(),
                "suspended": False,
                "max_machines": machines,
                "max_open_tickets": 1,
            }
            licences.save_serial(db, values, None, now)
        db.execute("COMMIT")


def _short_codes(n: int, taken: set[str]) -> list[str]:
    codes: list[str] = []
    while len(codes) < n:
        code = f"{secrets.randbelow(10**20):020d}"
        if code not in taken:
            taken.add(code)
            codes.append(code)
    return codes


def _code_checks(job: tuple[int, bytes, list[tuple[int, int]]]) -> list[bytes]:
    key_id, private, tickets = job
    key = SigningKey.from_private_bytes(key_id, private)
    return [code_check(issue_code(key, ticket_id, itinerary_id)) for ticket_id, itinerary_id in tickets]


def _insert_tickets(conn: Connection, rows: list[tuple], pool, private_key: bytes) -> None:  # noqa: ANN001
    """Insert ticket rows; printed ones get their code's digest, computed by ``pool``."""
    printed = [(row[0], row[3]) for row in rows if row[6] is not None]
    checks: dict[int, bytes] = {}
    if printed:
        key_id = rows[0][4]
        step = max(1, len(printed) // (4 * (os.cpu_count() or 1)))
        jobs = [(key_id, private_key, printed[i : i + step]) for i in range(0, len(printed), step)]
        for job, digests in zip(jobs, pool.map(_code_checks, jobs), strict=True):
            checks.update((ticket_id, digest) for (ticket_id, _), digest in zip(job[2], digests, strict=True))
    conn.executemany(
        "INSERT INTO tickets (id, company_id, generation_id, itinerary_id, key_id, short_code, printed_at, "
        "print_count, sync_seq, created_at, code_check) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(*row, checks.get(row[0])) for row in rows],
    )


def seed_tickets(
    db_path: str | Path,
    n: int,
    *,
    companies: int = 20,
    itineraries: int = 10,
    printed: bool = True,
    now: datetime | None = None,
) -> SeedResult:
    """Insert ``n`` tickets spread over ``companies`` customers and ``itineraries`` open vessel calls."""
    started = time.perf_counter()
    migrate(db_path)
    now = now or datetime.now(UTC)
    with direct_connection(db_path) as conn:
        if conn.dialect is not POSTGRESQL:
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("PRAGMA cache_size=-200000")
        pool = multiprocessing.get_context("spawn").Pool(os.cpu_count() or 1)
        conn.execute(conn.dialect.begin)
        try:
            result = _seed_rows(conn, n, pool, companies, itineraries, printed, now)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            pool.terminate()
        conn.execute("COMMIT")
        if conn.dialect is not POSTGRESQL:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    first_id, last_id, itinerary_ids, company_ids = result
    return SeedResult(first_id, last_id, itinerary_ids, company_ids, time.perf_counter() - started)


def _seed_rows(
    conn: Connection, n: int, pool: Any, companies: int, itineraries: int, printed: bool, now: datetime
) -> tuple[int, int, list[int], list[int]]:
    """The rows of :func:`seed_tickets`, inside its transaction."""
    stamp = now.isoformat(timespec="seconds")
    run = secrets.token_hex(3)
    key_id, private_key = conn.execute(
        "SELECT key_id, private_key FROM signing_keys WHERE retired_at IS NULL ORDER BY key_id DESC LIMIT 1"
    ).fetchone()
    company_ids = []
    for i in range(companies):
        company_ids.append(
            conn.execute(
                "INSERT INTO companies (tax_id, name, emails, kind, created_at) VALUES (?, ?, ?, 'customer', ?) "
                "RETURNING id",
                (f"B{run}{i:07d}", f"Bench Cargo {run}-{i} S.A.", json.dumps([f"c{i}@bench.example"]), stamp),
            ).fetchone()[0]
        )
    counter = conn.execute("SELECT value FROM sync_counter WHERE id = 1").fetchone()[0]
    itinerary_ids = []
    for i in range(itineraries):
        counter += 1
        itinerary_ids.append(
            conn.execute(
                "INSERT INTO itineraries (vessel, voyage, eta, etd, valid_from, valid_until, berth, sync_seq, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, 'B1', ?, ?) RETURNING id",
                (
                    f"BENCH VESSEL {i}",
                    f"{run}-{i}",
                    _iso(now),
                    _iso(now + timedelta(days=2)),
                    _iso(now - timedelta(days=1)),
                    _iso(now + timedelta(days=30)),
                    counter,
                    stamp,
                ),
            ).fetchone()[0]
        )
    service_id = conn.execute(
        "INSERT INTO services (code, name_es, name_en) VALUES (?, 'Contenedor', 'Container') "
        "ON CONFLICT (code) DO UPDATE SET active = 1 RETURNING id",
        ("BENCH",),
    ).fetchone()[0]
    per_company = [n // companies + (1 if i < n % companies else 0) for i in range(companies)]
    for company_id, quantity in zip(company_ids, per_company, strict=True):
        if not quantity:
            continue
        conn.execute(
            "INSERT INTO purchases (company_id, quantity, reference, status, recorded_at, confirmed_at) "
            "VALUES (?, ?, ?, 'confirmed', ?, ?)",
            (company_id, quantity, f"BENCH-{run}", stamp, stamp),
        )
        conn.execute(
            "INSERT INTO balances (company_id, confirmed, active_tickets) VALUES (?, ?, ?)",
            (company_id, quantity, quantity),
        )
    taken = {r[0] for r in conn.execute("SELECT short_code FROM tickets")}
    first_id = (conn.execute("SELECT MAX(id) FROM tickets").fetchone()[0] or 0) + 1
    rows: list[tuple] = []
    ticket_id = first_id
    generation = 0
    printed_at = stamp if printed else None
    for company_id, quantity in zip(company_ids, per_company, strict=True):
        done = 0
        while done < quantity:
            size = min(TICKETS_PER_GENERATION, quantity - done)
            itinerary_id = itinerary_ids[generation % len(itinerary_ids)]
            generation += 1
            generation_id = conn.execute(
                "INSERT INTO generations (transaction_no, company_id, itinerary_id, quantity, services, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (f"TXB{run}-{generation:07d}", company_id, itinerary_id, size, json.dumps([service_id]), stamp),
            ).fetchone()[0]
            for code in _short_codes(size, taken):
                counter += 1
                rows.append(
                    (
                        ticket_id,
                        company_id,
                        generation_id,
                        itinerary_id,
                        key_id,
                        code,
                        printed_at,
                        int(printed),
                        counter,
                        stamp,
                    )
                )
                ticket_id += 1
            done += size
            if len(rows) >= _INSERT_CHUNK:
                _insert_tickets(conn, rows, pool, private_key)
                rows = []
    _insert_tickets(conn, rows, pool, private_key)
    conn.execute("UPDATE sync_counter SET value = ? WHERE id = 1", (counter,))
    if conn.dialect is POSTGRESQL:  # explicit ids leave the identity behind: the next INSERT would collide
        conn.execute("SELECT setval(pg_get_serial_sequence('tickets', 'id'), ?)", (ticket_id - 1,))
    return first_id, ticket_id - 1, itinerary_ids, company_ids


def signing_keys(db_path: str | Path) -> KeyRing:
    with direct_connection(db_path) as db:
        return load_keys(db)


def signed_codes(db_path: str | Path, ticket_ids: list[int]) -> dict[int, str]:
    """The full (signed) codes of some seeded tickets, as printed on them."""
    keys = signing_keys(db_path)
    with direct_connection(db_path) as db:
        codes = {}
        for start in range(0, len(ticket_ids), 500):
            chunk = ticket_ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in db.query(f"SELECT id, itinerary_id, key_id FROM tickets WHERE id IN ({marks})", chunk):
                codes[row["id"]] = code_for(keys, row)
        return codes


def seed_registry(
    db_path: str | Path, companies: int, purchases: int, *, itineraries: int = 2_000, services: int = 200
) -> None:
    """A port-scale billing registry and catalogue for the staff lists: ``companies`` customers,
    ``purchases`` spread over them (confirmed, awaiting payment and a few voided), ``itineraries`` and
    ``services``. Names start with varied words, as real ones do, so searches match few or many."""
    migrate(db_path)
    rng = random.Random(11)
    words = ["Andina", "Pacifico", "Austral", "Costa", "Delta", "Litoral", "Manabi", "Norte", "Puerto", "Sierra"]
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    conn = connect(db_path).conn
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN IMMEDIATE")
    first = (conn.execute("SELECT MAX(id) FROM companies").fetchone()[0] or 0) + 1
    conn.executemany(
        "INSERT INTO companies (tax_id, name, emails, kind, created_at) VALUES (?, ?, '[]', 'customer', ?)",
        ((f"R{i:012d}", f"{words[i % 10]} {rng.choice(words)} {i:06d} S.A.", stamp) for i in range(companies)),
    )
    statuses = ["confirmed"] * 6 + ["pending"] * 3 + ["voided"]
    conn.executemany(
        "INSERT INTO purchases (company_id, quantity, reference, status, bank_reference, paid_on, recorded_at, "
        "confirmed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            (first + i % companies, 1 + i % 50, f"VEN-{i:08d}", s, "BP" if s == "confirmed" else "", None, stamp, None)
            for i, s in ((i, statuses[i % 10]) for i in range(purchases))
        ),
    )
    conn.executemany(
        "INSERT INTO itineraries (vessel, voyage, eta, etd, valid_from, valid_until, active, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            (f"{words[i % 10].upper()} STAR", f"R{i:05d}", stamp, stamp, stamp, stamp, int(i % 3 > 0), stamp)
            for i in range(itineraries)
        ),
    )
    conn.executemany(
        "INSERT INTO services (code, name_es, name_en, active) VALUES (?, ?, ?, ?)",
        ((f"SRV{i:04d}", f"Servicio {i}", f"Service {i}", int(i % 4 > 0)) for i in range(services)),
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


#: The audit log's events with how often each comes (sign-ins and prints dominate, as on a real portal).
_AUDIT_EVENTS = (
    ("login.ok", 60),
    ("ticket.printed", 15),
    ("purchase.recorded", 5),
    ("purchase.confirmed", 5),
    ("itinerary.saved", 4),
    ("password.changed", 3),
    ("profile.granted", 3),
    ("user.created", 2),
    ("purchase.voided", 1),
    ("kiosk.enrolled", 1),
    ("kiosk.revoked", 1),
)
_FIRST_NAMES = ["Ana", "Bruno", "Carla", "Diego", "Elena", "Fabian", "Gloria", "Hugo", "Irene", "Jorge"]
_LAST_NAMES = ["Alvarado", "Benitez", "Cedeno", "Duran", "Espinoza", "Flores", "Guerrero", "Herrera", "Ibarra"]
_STAFF_ROLES = ("billing_clerk", "operations", "gate_supervisor", "helpdesk_agent", "admin")


def seed_staff_lists(
    db_path: str | Path, *, users: int = 2_000, audit: int = 200_000, kiosks: int = 50, conflicts: int = 2_000
) -> None:
    """What the administrator's and the gate supervisor's lists read at port scale: ``users`` accounts
    with profiles (customers at registry companies, a few staff and some with two companies), ``audit``
    log entries over the last year, kiosks up to ``kiosks`` (some pending, some revoked) and
    ``conflicts`` between logged scans (most resolved). Needs the operator company and some scans
    (``bench.portal`` seeds them first)."""
    rng = random.Random(13)
    now = datetime.now(UTC)
    stamp = now.isoformat(timespec="seconds")
    conn = connect(db_path).conn
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN IMMEDIATE")
    operator = conn.execute("SELECT id FROM companies WHERE kind = 'operator' ORDER BY id").fetchone()[0]
    customers = [r[0] for r in conn.execute("SELECT id FROM companies WHERE kind = 'customer' ORDER BY id")]
    user_ids = _seed_users(conn, rng, users, operator, customers, stamp)
    _seed_audit(conn, rng, audit, user_ids, customers, now)
    _seed_kiosks(conn, kiosks, stamp)
    _seed_conflicts(conn, rng, conflicts, user_ids, now)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


def _seed_users(conn: sqlite3.Connection, rng: random.Random, n: int, operator: int, customers: list[int], stamp: str):  # noqa: ANN202
    """``n`` accounts (nobody signs in with them: their password hash matches no password); their ids."""
    first = (conn.execute("SELECT MAX(id) FROM users").fetchone()[0] or 0) + 1
    statuses = ["active"] * 16 + ["pending", "pending", "disabled", "rejected"]
    conn.executemany(
        "INSERT INTO users (id, username, email, full_name, password_hash, status, created_at) "
        "VALUES (?, ?, ?, ?, '!', ?, ?)",
        (
            (
                first + i,
                f"usuario{i:05d}",
                f"usuario{i:05d}@bench.example",
                f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)} {rng.choice(_LAST_NAMES)}",
                statuses[i % len(statuses)],
                stamp,
            )
            for i in range(n)
        ),
    )
    profiles = []
    for i in range(n):
        user_id = first + i
        if i % 20 == 0:  # one in twenty works at the terminal
            profiles.append((user_id, operator, _STAFF_ROLES[(i // 20) % len(_STAFF_ROLES)]))
            continue
        profiles.append((user_id, rng.choice(customers), "customer_admin" if i % 10 == 1 else "customer"))
        if i % 15 == 2:  # a few act for a second company
            profiles.append((user_id, rng.choice(customers), "customer"))
    conn.executemany("INSERT OR IGNORE INTO profiles (user_id, company_id, role) VALUES (?, ?, ?)", profiles)
    return list(range(first, first + n))


def _seed_audit(
    conn: sqlite3.Connection, rng: random.Random, n: int, user_ids: list[int], customers: list[int], now: datetime
) -> None:
    """``n`` events over the last 365 days, oldest first (ids grow with time, as they do when logged)."""
    events = [event for event, weight in _AUDIT_EVENTS for _ in range(weight)]
    start = now - timedelta(days=365)
    step = timedelta(days=365) / max(n, 1)
    conn.executemany(
        "INSERT INTO audit_log (at, user_id, company_id, event, detail, address) VALUES (?, ?, ?, ?, ?, ?)",
        (
            (
                (start + step * i).isoformat(timespec="seconds"),
                rng.choice(user_ids),
                rng.choice(customers) if i % 3 else None,
                rng.choice(events),
                f"bench {i}",
                f"10.0.{i % 250}.{i % 200}",
            )
            for i in range(n)
        ),
    )


def _seed_kiosks(conn: sqlite3.Connection, total: int, stamp: str) -> None:
    """Kiosks up to ``total``: one in ten awaiting enrolment, one in ten revoked, the rest active."""
    have = conn.execute("SELECT COUNT(*) FROM kiosks").fetchone()[0]
    statuses = ["active"] * 8 + ["pending", "revoked"]
    conn.executemany(
        "INSERT INTO kiosks (name, gate, status, created_at, enrolled_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)",
        (
            (
                f"Kiosko {i:03d}",
                f"Garita {i % 6}",
                s,
                stamp,
                None if s == "pending" else stamp,
                stamp if s == "revoked" else None,
            )
            for i, s in ((i, statuses[i % 10]) for i in range(have, total))
        ),
    )


def _seed_conflicts(conn: sqlite3.Connection, rng: random.Random, n: int, user_ids: list[int], now: datetime) -> None:
    """``n`` conflicts, each between a logged scan of a ticket and a later one of the same ticket, oldest
    first; all but the newest tenth resolved."""
    top = conn.execute("SELECT MAX(id) FROM scans").fetchone()[0] or 0
    scans = [
        conn.execute("SELECT scan_id, ticket_id FROM scans WHERE id = ?", (scan_id,)).fetchone()
        for scan_id in rng.sample(range(1, top + 1), min(n, top))
    ]
    kinds = ["double_accept"] * 6 + ["overrode_refusal"] * 3 + ["accepted_after_delete"]
    rows = []
    for i, (second, ticket_id) in enumerate(s for s in scans if s is not None and s[1] is not None):
        first = conn.execute(
            "SELECT scan_id FROM scans WHERE ticket_id = ? AND scan_id != ? LIMIT 1", (ticket_id, second)
        ).fetchone()
        created = (now - timedelta(minutes=n - i)).isoformat(timespec="seconds")
        resolved = i < n * 9 // 10
        rows.append(
            (
                ticket_id,
                kinds[i % len(kinds)],
                first[0] if first else "",
                second,
                created,
                second,
                created if resolved else None,
                rng.choice(user_ids) if resolved else None,
                "Revisado con la garita" if resolved else "",
            )
        )
    conn.executemany(
        "INSERT INTO conflicts (ticket_id, kind, first_scan_id, second_scan_id, created_at, reported_scan_id, "
        "resolved_at, resolved_by, resolution) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
