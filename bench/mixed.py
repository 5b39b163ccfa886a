"""Redeems under portal load: the gate's p99 while customers print big PDFs and a clerk imports a big CSV.

    python -m bench.mixed [--database-url URL] [--clients 50] [--seconds 20] [--tickets 200000] [--pdfs 5]
                          [--pdf-tickets 500] [--import-rows 10000]

Seeds ``--tickets`` printed tickets (50 customer companies) into a real database (``--database-url``:
``sqlite:///path/portgate.db``, by default a temporary file, or ``postgresql://…``) and starts one real server
process (its PDF process warmed up by one print). Online redeems of distinct valid codes then run from a separate
load-generator process (``bench.redeem``'s, ``--clients`` kiosk connections in flight) twice on the same
server, ``--seconds`` each: first alone, then from the moment ``--pdfs`` customers each ask for a PDF of
``--pdf-tickets`` of their tickets through the API and a billing clerk posts a ``--import-rows``-row purchases
CSV (it ends sooner if that work is all answered). The redeems go in rounds of :data:`CHUNK` codes so a run
can stop on time; both runs are measured the same way. The portal work is then waited for and timed.
Prints both runs' latency and throughput, each portal request's time, and last
``mixed: redeem p99 <Q> ms quiet, <L> ms under portal load (…); <N> req/s vs <M>``. Target: L ≤ 2 × Q.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent import futures
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bench.redeem import KIOSKS, WARM_UP, _load, _run
from bench.seed import ensure_gate_licence, seed_tickets, signed_codes
from bench.server_process import cpu_seconds, enrol_kiosk, server_process
from server.accounts.sessions import create_session
from server.db import direct_connection, is_postgresql

#: Redeems per load-generator round: small enough that a phase ends within ~0.5 s of its portal work.
CHUNK = 600
COMPANIES = 50
#: Codes signed for both runs together (about 2000 redeems a second at most on the target box).
MAX_CODES = 100_000


@dataclass(frozen=True)
class Phase:
    """One run of redeems: each answer's latency (ms) and the seconds they took altogether."""

    latencies: list[float]
    seconds: float
    server_cpu: float

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def _generator(base: str, tokens: list[str], warm_up: list[str], codes: list[str], clients: int, stop, queue) -> None:  # noqa: ANN001
    """The load generator's process: warm up, then rounds of :data:`CHUNK` redeems until ``stop`` is set."""
    _run(_load(base, tokens, warm_up, clients))
    queue.put("measuring")
    latencies: list[float] = []
    seconds = 0.0
    for start in range(0, len(codes), CHUNK):
        if stop.is_set():
            break
        results, took = _run(_load(base, tokens, codes[start : start + CHUNK], clients))
        latencies += [ms for ms, _ticket, _accepted, _reason in results]
        seconds += took
    else:
        print("the codes ran out before the run's time: raise --tickets", file=sys.stderr)
    queue.put((latencies, seconds))


def _people(database_url: str, customers: list[int]) -> tuple[list[str], str]:
    """API tokens of one customer user per company in ``customers`` and of a billing clerk at the operator."""
    ensure_gate_licence(database_url)  # the operator company, and a licence for the bench kiosks
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    people = [(f"mix-customer-{i}", company_id, "customer") for i, company_id in enumerate(customers)]
    tokens = []
    with direct_connection(database_url) as db:
        operator = db.execute("SELECT id FROM companies WHERE kind = 'operator' ORDER BY id").fetchone()[0]
        people.append(("mix-clerk", operator, "billing_clerk"))
        db.execute(db.dialect.begin)
        # A clerk's file names companies by tax id, which the import reads in upper case (the seeder's are not).
        db.execute("UPDATE companies SET tax_id = upper(tax_id) WHERE kind = 'customer'")
        for username, company_id, role in people:
            user_id = db.execute(
                "INSERT INTO users (username, email, full_name, password_hash, status, created_at) "
                "VALUES (?, ?, ?, 'x', 'active', ?) RETURNING id",
                (username, f"{username}@bench.example", username, stamp),
            ).fetchone()[0]
            db.execute("INSERT INTO profiles (user_id, company_id, role) VALUES (?, ?, ?)", (user_id, company_id, role))
            tokens.append(create_session(db, user_id, "api", 4, time.time()))
        db.execute("COMMIT")
    return tokens[:-1], tokens[-1]


def _tickets_of(database_url: str, company_id: int, n: int) -> list[int]:
    with direct_connection(database_url) as db:
        rows = db.execute("SELECT id FROM tickets WHERE company_id = ? ORDER BY id LIMIT ?", (company_id, n))
        return [row[0] for row in rows.fetchall()]


def _purchases_csv(database_url: str, rows: int) -> str:
    """``rows`` purchases of the seeded companies, each with its own reference, as a clerk's CSV."""
    with direct_connection(database_url) as db:
        tax_ids = [row[0] for row in db.execute("SELECT tax_id FROM companies WHERE kind = 'customer'").fetchall()]
    run = os.urandom(3).hex()
    lines = ["tax_id,quantity,reference"]
    lines += [f"{tax_ids[i % len(tax_ids)]},{1 + i % 40},MIX-{run}-{i:06d}" for i in range(rows)]
    return "\n".join(lines) + "\n"


async def _timed(label: str, request: Awaitable[aiohttp.ClientResponse]) -> tuple[str, float, int, int]:
    started = time.perf_counter()
    async with await request as resp:
        body = await resp.read()
        return label, time.perf_counter() - started, resp.status, len(body)


async def _portal_load(base: str, customers: list[tuple[str, list[int]]], clerk: str, csv: str) -> list[tuple]:
    """Every customer's PDF and the clerk's import at once; (what, seconds, status, bytes) of each."""
    timeout = aiohttp.ClientTimeout(total=None)  # how long a PDF takes on a busy box is a result, not an error
    async with aiohttp.ClientSession(base, timeout=timeout) as session:
        work: list[Awaitable[tuple[str, float, int, int]]] = [
            _timed(
                f"PDF of {len(ids)} tickets (customer {n + 1})",
                session.post(
                    "/api/v1/tickets/print",
                    json={"ticket_ids": ids, "per_sheet": 1},
                    headers={"Authorization": f"Bearer {token}"},
                ),
            )
            for n, (token, ids) in enumerate(customers)
        ]
        rows = csv.count("\n") - 1
        work.append(
            _timed(
                f"import of {rows} purchases",
                session.post(
                    "/api/v1/billing/purchases/import", json={"csv": csv}, headers={"Authorization": f"Bearer {clerk}"}
                ),
            )
        )
        answers = await asyncio.gather(*work, return_exceptions=True)
    return [a if isinstance(a, tuple) else (f"a portal request that failed ({a!r:.80})", 0.0, 599, 0) for a in answers]


def _warm_up_printing(base: str, token: str, ticket_id: int) -> None:
    """One small print, so the PDF process is running as on a server that has printed before."""

    async def print_one() -> None:
        async with aiohttp.ClientSession(base) as session:
            url, auth = f"/api/v1/tickets/{ticket_id}/print?format=pdf", {"Authorization": f"Bearer {token}"}
            async with session.post(url, headers=auth) as resp:
                assert resp.status == 200, await resp.text()

    asyncio.run(print_one())


def _phase(
    context: Any, server: Any, load: tuple, seconds: float, start_work: Callable[[], Future] | None = None
) -> tuple[Phase, Future | None]:
    """One measured run of redeems: ``seconds`` long, or until the work ``start_work`` starts is all answered."""
    stop, queue = context.Event(), context.Queue()
    generator = context.Process(target=_generator, args=(*load, stop, queue))
    generator.start()
    assert queue.get() == "measuring"
    cpu = cpu_seconds(server)
    work = start_work() if start_work is not None else None
    if work is None:
        time.sleep(seconds)
    else:
        futures.wait([work], timeout=seconds)
    stop.set()
    latencies, took = queue.get()
    generator.join()
    return Phase(latencies, took, cpu_seconds(server) - cpu), work


def _report(name: str, phase: Phase) -> None:
    print(
        f"{name}: {len(phase.latencies)} redeems in {phase.seconds:.1f} s ({phase.rate:.0f} req/s); "
        f"p50 {statistics.median(phase.latencies):.1f} ms, p90 {phase.quantile(0.9):.1f} ms, "
        f"p99 {phase.quantile(0.99):.1f} ms, max {max(phase.latencies):.1f} ms; "
        f"server CPU {phase.server_cpu / phase.seconds * 100:.0f}% of one core"
    )


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.mixed", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", default="", help="sqlite:///path or postgresql://… (default: a temp SQLite file)"
    )
    parser.add_argument("--clients", type=int, default=50, help="kiosk connections in flight (default 50)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each measured run (default 20)")
    parser.add_argument("--tickets", type=int, default=200_000, help="tickets in the database (default 200,000)")
    parser.add_argument("--pdfs", type=int, default=5, help="customers printing at once (default 5)")
    parser.add_argument("--pdf-tickets", type=int, default=500, help="tickets in each PDF (default 500)")
    parser.add_argument("--import-rows", type=int, default=10_000, help="rows of the purchases CSV (default 10,000)")
    parser.add_argument("--seed", type=int, default=1, help="random seed for the redeem order")
    parser.add_argument(
        "--portal-wait", type=float, default=900, help="seconds to wait for the portal work after the run (900)"
    )
    return parser.parse_args(argv)


@dataclass(frozen=True)
class Plan:
    """Who prints what, the clerk's file, and the codes of each run (its warm-up first)."""

    customers: list[tuple[str, list[int]]]
    clerk: str
    csv: str
    runs: tuple[tuple[list[str], list[str]], tuple[list[str], list[str]]]


def _plan(database_url: str, args: argparse.Namespace) -> Plan:
    seeded = seed_tickets(database_url, args.tickets, companies=COMPANIES, itineraries=20)
    print(f"seeded {args.tickets} tickets in {seeded.seconds:.1f} s", file=sys.stderr)
    printing, gate = seeded.company_ids[: args.pdfs], seeded.company_ids[args.pdfs :]
    tokens, clerk = _people(database_url, printing)
    pairs = zip(tokens, printing, strict=True)
    # One more ticket each than printed: the first warms the PDF process up.
    customers = [(token, _tickets_of(database_url, company, args.pdf_tickets + 1)) for token, company in pairs]
    # Redeems use the other companies' tickets: a print refuses a ticket used meanwhile, all or nothing.
    gate_ids = [i for company in gate for i in _tickets_of(database_url, company, args.tickets)]
    random.Random(args.seed).shuffle(gate_ids)
    codes = signed_codes(database_url, gate_ids[:MAX_CODES])
    ordered = [codes[i] for i in gate_ids[: len(codes)]]
    half = len(ordered) // 2
    runs = (
        (ordered[:WARM_UP], ordered[WARM_UP:half]),
        (ordered[half : half + WARM_UP], ordered[half + WARM_UP :]),
    )
    return Plan(customers, clerk, _purchases_csv(database_url, args.import_rows), runs)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    with tempfile.TemporaryDirectory(prefix="pg-bench-mixed-") as tmp:
        data_dir = Path(tmp) / "data"
        database_url = args.database_url or f"sqlite://{data_dir.absolute() / 'portgate.db'}"
        plan = _plan(database_url, args)
        (first_token, (first_ticket, *_)) = plan.customers[0]
        customers = [(token, ids[1:]) for token, ids in plan.customers]
        with server_process(data_dir, database_url=database_url) as (base, server):
            kiosks = [enrol_kiosk(base, database_url, f"mix-kiosk-{i}") for i in range(KIOSKS)]
            _warm_up_printing(base, first_token, first_ticket)
            context = multiprocessing.get_context("spawn")
            quiet, _ = _phase(context, server, (base, kiosks, *plan.runs[0], args.clients), args.seconds)
            background = futures.ThreadPoolExecutor(1)
            loaded, work = _phase(
                context,
                server,
                (base, kiosks, *plan.runs[1], args.clients),
                args.seconds,
                lambda: background.submit(asyncio.run, _portal_load(base, customers, plan.clerk, plan.csv)),
            )
            assert work is not None
            try:  # the rest of the portal work, unmeasured, to see it answered and timed
                portal = work.result(timeout=args.portal_wait)
            except futures.TimeoutError:
                portal = []
                print(f"the portal work was not all answered {args.portal_wait:.0f} s after the run", file=sys.stderr)
            background.shutdown(wait=False)
    _summary(args, "postgresql" if is_postgresql(database_url) else "sqlite", quiet, loaded, portal)
    return 0


def _summary(args: argparse.Namespace, engine: str, quiet: Phase, loaded: Phase, portal: list[tuple]) -> None:
    _report("quiet", quiet)
    _report("under portal load", loaded)
    for what, seconds, status, size in portal:
        print(f"  {what}: {seconds:.2f} s, HTTP {status}, {size / 1024:.0f} KiB")
    if any(status >= 300 for _what, _seconds, status, _size in portal):
        print("some portal work failed: the figures below are not comparable", file=sys.stderr)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; one server process on {engine}")
    print(
        f"mixed: redeem p99 {quiet.quantile(0.99):.1f} ms quiet, {loaded.quantile(0.99):.1f} ms under portal load "
        f"({args.pdfs}×{args.pdf_tickets}-ticket PDFs, a {args.import_rows:,}-row import); "
        f"{quiet.rate:.0f} req/s vs {loaded.rate:.0f}"
    )


if __name__ == "__main__":
    sys.exit(main())
