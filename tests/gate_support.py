"""Helpers for the gate tests: real tickets through the service layer, enrolled kiosks, scans."""

from __future__ import annotations

import itertools
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from server.accounts.sessions import create_session
from server.db import scalar
from server.gate import kiosks
from server.tickets import KEYS, tickets_changed
from server.tickets.service import (
    code_for,
    confirm_purchase,
    generate_tickets,
    print_ticket,
    record_purchase,
    save_itinerary,
    save_service,
    validate_itinerary,
)
from server.web import DB

ANDINA_TAX_ID = "0991234567001"
PACIFICO_TAX_ID = "1790012345001"
_voyages = itertools.count(1)


def now() -> datetime:
    return datetime.now(UTC)


async def company_id(app, tax_id: str = ANDINA_TAX_ID) -> int:
    return await app[DB].read(lambda db: scalar(db, "SELECT id FROM companies WHERE tax_id = ?", (tax_id,)))


async def make_itinerary(app, *, opens: timedelta = timedelta(days=-1), closes: timedelta = timedelta(days=2)) -> int:
    """An itinerary whose gate window is [now + opens, now + closes]."""
    start = now()
    values = validate_itinerary(
        {
            "vessel": "MSC AURORA",
            "voyage": f"V{next(_voyages):04d}-{uuid.uuid4().hex[:6]}",
            "eta": (start + opens).isoformat(timespec="minutes"),
            "etd": (start + closes).isoformat(timespec="minutes"),
            "valid_from": (start + opens).isoformat(timespec="minutes"),
            "valid_until": (start + closes).isoformat(timespec="minutes"),
        }
    )
    return await app[DB].write(save_itinerary, values, now=now())


async def make_tickets(
    app,
    n: int,
    *,
    tax_id: str = ANDINA_TAX_ID,
    itinerary_id: int | None = None,
    printed: bool = True,
) -> list[dict[str, Any]]:
    """``n`` generated (and by default printed) tickets, each with its full ``code``."""
    db = app[DB]
    company = await company_id(app, tax_id)
    if itinerary_id is None:
        itinerary_id = await make_itinerary(app)
    service = {"code": "CONT", "name_es": "Contenedor", "name_en": "Container"}
    service_id = await db.write(save_service, service, now=now())
    reference = f"REF-{uuid.uuid4().hex[:10]}"
    purchase = await db.write(
        record_purchase, {"company_id": company, "quantity": n, "reference": reference}, now=now()
    )
    await db.write(confirm_purchase, purchase, now=now())
    tx = await db.write(
        generate_tickets,
        app[KEYS],
        company,
        None,
        {"quantity": n, "itinerary_id": itinerary_id, "services": [service_id]},
        now(),
    )
    tickets = await db.read(
        lambda d: list(d.query("SELECT * FROM tickets WHERE generation_id = ? ORDER BY id", (tx["generation_id"],)))
    )
    if printed:
        for ticket in tickets:
            await db.write(print_ticket, company, ticket["id"], now=now())
        await tickets_changed(app, [t["id"] for t in tickets])
    for ticket in tickets:
        ticket["code"] = code_for(app[KEYS], ticket)
    return tickets


async def enrol_kiosk(client, name: str | None = None, allowed: list[int] | None = None) -> dict[str, Any]:
    """Create a kiosk (service layer) and enrol it through the API; returns the enrol answer + headers."""
    app = client.server.app
    values = {"name": name or f"Puerta {uuid.uuid4().hex[:6]}", "gate": "Norte", "allowed_itineraries": allowed}
    kiosk_id, code = await app[DB].write(kiosks.create_kiosk, values, None, now())
    resp = await client.post(
        "/api/v1/gate/enrol", json={"enrol_code": code, "fingerprint": "test-box", "agent_version": "test"}
    )
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert body["kiosk_id"] == kiosk_id
    body["headers"] = {"Authorization": f"Bearer {body['token']}"}
    return body


def scan(code: str, scan_id: str | None = None, scanned_at: datetime | None = None) -> dict[str, Any]:
    return {
        "scan_id": scan_id or str(uuid.uuid4()),
        "code": code,
        "scanned_at": (scanned_at or now()).isoformat(),
    }


async def redeem(client, kiosk: dict[str, Any], code: str, scan_id: str | None = None) -> dict[str, Any]:
    resp = await client.post("/api/v1/gate/redeem", json=scan(code, scan_id), headers=kiosk["headers"])
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def api_token(app, username: str) -> str:
    """A portal API session for a demo user (as /api/v1/auth/login would give)."""
    user_id = await app[DB].read(lambda db: scalar(db, "SELECT id FROM users WHERE username = ?", (username,)))
    return await app[DB].write(create_session, user_id, "api", 1, time.time())


async def limit_database_pages(app, pages: int | None) -> None:
    """As a full disk would: SQLite may not grow the file past ``pages`` (None lifts it), for the
    connections that write (the writer thread's and the event loop's, which the redeems use)."""
    database = app[DB]
    size = 1_073_741_823 if pages is None else pages  # SQLite's default limit

    def limit(db) -> None:  # noqa: ANN001
        db.execute(f"PRAGMA max_page_count = {int(size)}")

    await database.write(limit)
    await database.write_turn()
    try:
        database.write_here(limit)
    finally:
        database.end_write_turn()


def limit_kiosk_pages(store, room: int | None) -> None:  # noqa: ANN001 - a gate_agent.cache.AgentStore
    """As a full disk would: the kiosk's cache may grow by ``room`` pages at most (None lifts it)."""
    pages = 1_073_741_823 if room is None else store.db.execute("PRAGMA page_count").fetchone()[0] + room
    store._write.execute(f"PRAGMA max_page_count = {pages}")  # noqa: SLF001 - the connection that writes
