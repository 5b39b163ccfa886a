"""Gate hot path: serial scan → verdict on the kiosk screen, camera decode, cache lookup, memory.

    python -m bench.scan [--n 200] [--frames 200] [--tickets 1000000]

- serial->verdict: a real server process and a real agent process whose serial reader listens on a
  pty; the time runs from the last byte written on the pty master to the verdict arriving on the
  kiosk screen's WebSocket. Online = server up (online redeem); offline = server stopped.
- camera: synthetic photos of printed tickets (blur, noise, rotation, perspective, uneven light)
  through the decoder the agent uses for cameras (the frame pipeline, QR only); zxing-cpp and
  pyzbar alone alongside.
- lookup: a ticket lookup in the agent's SQLite cache holding ``--tickets`` tickets.
- rss: resident memory of the agent process while its cache holds ``--tickets`` tickets.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench.photos import make_ticket_frames
from gate_agent.cache import AgentStore
from gate_agent.scanner.decoders import get_decoder
from gate_core.wire import TICKET_COLUMNS


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


# --- camera -----------------------------------------------------------------------------------


def measure_camera(frames: int) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    for size in ((640, 480), (1280, 720)):
        tickets = make_ticket_frames(frames, size=size, seed=7)
        for backend in ("pyzbar", "zxing", "auto"):
            decoder = get_decoder(backend, formats=("qrcode",))
            for _code, frame in tickets[:3]:
                decoder.decode(frame)
            timings, read = [], 0
            for code, frame in tickets:
                started = time.perf_counter()
                found = decoder.decode(frame)
                timings.append((time.perf_counter() - started) * 1000)
                read += code in found
            results[f"{backend} {size[0]}x{size[1]}"] = {
                "median": statistics.median(timings),
                "rate": 100 * read / len(tickets),
            }
    return results


# --- cache lookup and memory ------------------------------------------------------------------


#: A cached ticket row in the wire schema's column order.
_INSERT_TICKET = f"INSERT INTO tickets ({', '.join(TICKET_COLUMNS)}) VALUES ({', '.join('?' * len(TICKET_COLUMNS))})"


def fill_cache(path: Path, n: int) -> list[str]:
    """A kiosk cache as a full sync of ``n`` tickets leaves it; returns some short codes."""
    store = AgentStore(path)
    store.close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    rng = random.Random(3)
    codes = []
    batch = []
    for ticket_id in range(1, n + 1):
        short = f"{rng.getrandbits(66) % 10**20:020d}"
        if ticket_id % max(1, n // 2000) == 0:
            codes.append(short)
        batch.append(
            (
                ticket_id,
                1 + ticket_id % 40,
                1 + ticket_id % 300,
                1 + ticket_id % 5000,
                1,
                0,
                short,
                None,
                None,
                None,
                ticket_id,
            )
        )
        if len(batch) == 50_000:
            conn.executemany(_INSERT_TICKET, batch)
            batch.clear()
    conn.executemany(_INSERT_TICKET, batch)
    conn.executemany("INSERT INTO companies VALUES (?, ?)", [(i, f"Company {i}") for i in range(1, 301)])
    conn.executemany(
        "INSERT INTO itineraries VALUES (?, ?, ?, ?, 1)",
        [(i, f"Vessel {i}", "2026-01-01T00:00+00:00", "2027-01-01T00:00+00:00") for i in range(1, 41)],
    )
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('token', 'bench-offline')")
    conn.commit()
    conn.close()
    return codes


def measure_lookup(path: Path, codes: list[str]) -> float:
    store = AgentStore(path)
    ids = [store.lookup_short_code(c)[0] for c in codes[:50]]  # warm the page cache like a running kiosk
    timings = []
    for _ in range(5):
        for code in codes:
            started = time.perf_counter()
            row = store.lookup_short_code(code)
            timings.append((time.perf_counter() - started) * 1e6)
            assert row is not None
    store.close()
    assert ids
    return statistics.median(timings)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- serial → verdict -------------------------------------------------------------------------


async def measure_serial(n: int, workdir: Path) -> tuple[list[float], list[float]]:
    from tests.stack import AgentProcess, KioskScreen, PortalUser, ServerProcess

    server = ServerProcess(workdir / "server").start()
    codes = seed_printed_tickets(server, 2 * n + 20)
    supervisor = PortalUser(server.url)
    await supervisor.login("supervisor")
    enrol_code = await supervisor.create_kiosk("Bench")
    await supervisor.close()
    master, slave = os.openpty()
    agent = AgentProcess(
        server.url, workdir / "agent", [{"type": "serial", "source": os.ttyname(slave)}], upload_interval_s=60.0
    )
    assert agent.enrol(enrol_code).returncode == 0
    agent.start()
    online: list[float] = []
    offline: list[float] = []
    try:
        async with KioskScreen(agent) as screen:
            await screen.wait_status(lambda s: s["online"], timeout=30)
            await asyncio.sleep(1.0)
            await scan_all(screen, master, codes[:10], [])  # warm-up
            await scan_all(screen, master, codes[10 : 10 + n], online)
            server.stop()
            await screen.wait_status(lambda s: not s["online"], timeout=30)
            await scan_all(screen, master, codes[10 + n : 10 + 2 * n], offline)
            agent.rss = rss_mb(agent.proc.pid)
    finally:
        agent.stop()
        server.stop()
        os.close(master)
        os.close(slave)
    return offline, online


async def scan_all(screen, master: int, codes: list[str], timings: list[float]) -> None:  # noqa: ANN001
    for code in codes:
        os.write(master, code.encode())
        os.write(master, b"\r")
        started = time.perf_counter()  # the last byte is written
        verdict = await screen.next_verdict(timeout=10)
        timings.append((time.perf_counter() - started) * 1000)
        assert verdict["accepted"], verdict


def seed_printed_tickets(server, count: int) -> list[str]:  # noqa: ANN001
    """Printed tickets for customer Andina through the service layer on the server's database."""

    from server.db import Database
    from server.tickets import service as svc

    db = Database(server.data_dir / "portgate.db", readers=1)
    try:

        def seed(d):  # noqa: ANN001, ANN202
            company = d.execute("SELECT id FROM companies WHERE tax_id = '0991234567001'").fetchone()[0]
            itinerary = d.execute("SELECT id FROM itineraries WHERE vessel = 'MSC Guayaquil'").fetchone()[0]
            at = datetime.now(UTC)
            purchase = svc.record_purchase(d, {"company_id": company, "quantity": count, "reference": "BENCH"}, now=at)
            svc.confirm_purchase(d, purchase, now=at)
            keys = svc.load_keys(d)
            result = svc.generate_tickets(
                d,
                keys,
                company,
                None,
                {"quantity": count, "itinerary_id": itinerary, "services": [1]},
                datetime.now(UTC),
            )
            rows = d.execute(
                "SELECT id, short_code FROM tickets WHERE generation_id = ?", (result["generation_id"],)
            ).fetchall()
            for ticket_id, _short in rows:
                svc.print_ticket(d, company, ticket_id, now=at)
            return [short for _id, short in rows]

        return db.write_sync(seed)
    finally:
        db.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="scans per mode (online, offline)")
    parser.add_argument("--frames", type=int, default=200, help="photos per frame size")
    parser.add_argument("--tickets", type=int, default=1_000_000, help="tickets in the kiosk cache")
    args = parser.parse_args(argv)

    camera = measure_camera(args.frames)
    for size in ("640x480", "1280x720"):
        print(
            f"camera {size}: pyzbar median {camera[f'pyzbar {size}']['median']:.2f} ms, read "
            f"{camera[f'pyzbar {size}']['rate']:.1f}% | zxing-cpp median {camera[f'zxing {size}']['median']:.2f} ms, "
            f"read {camera[f'zxing {size}']['rate']:.1f}% | pipeline median {camera[f'auto {size}']['median']:.2f} ms, "
            f"read {camera[f'auto {size}']['rate']:.1f}%"
        )
    with tempfile.TemporaryDirectory(prefix="portgate-bench-scan-") as tmp:
        workdir = Path(tmp)
        offline, online = asyncio.run(measure_serial(args.n, workdir))
        cache = workdir / "filled" / "agent.db"
        codes = fill_cache(cache, args.tickets)
        lookup_us = measure_lookup(cache, codes)
        rss = asyncio.run(measure_agent_rss(cache, codes))
    # The figures of the decoder the agent's cameras use: the frame pipeline ("auto").
    rate = (camera["auto 640x480"]["rate"] + camera["auto 1280x720"]["rate"]) / 2
    print(f"rss {rss:.0f} MB")
    print(
        f"scan: serial->verdict p99 {pct(offline, 99):.1f} ms offline, {pct(online, 99):.1f} ms online; "
        f"camera 640x480 median {camera['auto 640x480']['median']:.2f} ms, 1280x720 median "
        f"{camera['auto 1280x720']['median']:.2f} ms; decode rate {rate:.1f}% on {2 * args.frames} frames; "
        f"lookup {lookup_us:.1f} us at {args.tickets} tickets"
    )
    return 0


async def measure_agent_rss(cache: Path, codes: list[str]) -> float:
    """Resident memory of a running agent (offline: its server does not answer) whose cache is the
    filled one, after it has decided a few hundred scans typed on its screen."""
    from tests.stack import AgentProcess, KioskScreen

    agent = AgentProcess("http://127.0.0.1:9", cache.parent)
    agent.start()
    try:
        async with KioskScreen(agent) as screen:
            for code in codes[:300]:
                await screen.type_code(code)
                await screen.next_verdict(timeout=10)
        return rss_mb(agent.proc.pid)
    finally:
        agent.stop()


if __name__ == "__main__":
    sys.exit(main())
