"""The customer ticket API: balance, generation, listing, print, delete — and company isolation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

import server.tickets
from server.db import scalar
from server.gate.redeem import read_code
from server.tickets import KEYS
from server.tickets.service import (
    KeyRing,
    confirm_purchase,
    generate_tickets,
    load_keys,
    record_purchase,
    rotate_signing_key,
)
from server.web import DB
from tests.dbaccess import db_execute
from tests.helpers import api_error, api_token, bearer, db_rows


async def customer(client, login: str, profile_company: str | None = None) -> dict[str, str]:
    headers = bearer(await api_token(client, login))
    if profile_company:
        profiles = (await (await client.get("/api/v1/profiles", headers=headers)).json())["profiles"]
        chosen = next(p for p in profiles if p["company_name"] == profile_company)
        await client.post("/api/v1/profiles/select", json={"profile_id": chosen["id"]}, headers=headers)
    return headers


async def open_itinerary(client, headers) -> tuple[int, list[int]]:
    itineraries = (await (await client.get("/api/v1/itineraries", headers=headers)).json())["itineraries"]
    services = (await (await client.get("/api/v1/services", headers=headers)).json())["services"]
    return next(i["id"] for i in itineraries if i["vessel"] == "MSC Guayaquil"), [s["id"] for s in services]


async def test_generate_list_print_delete_through_the_api(client, config):
    headers = await customer(client, "pacifico")
    assert await (await client.get("/api/v1/tickets/balance", headers=headers)).json() == {
        "purchased": 10,
        "generated": 0,
        "available": 10,
    }
    itinerary, services = await open_itinerary(client, headers)
    resp = await client.post(
        "/api/v1/tickets/generate",
        headers=headers,
        json={"quantity": 3, "itinerary_id": itinerary, "services": services[:2]},
    )
    assert resp.status == 201
    assert (await resp.json())["transaction_no"].startswith("TX")
    listing = await (await client.get(f"/api/v1/tickets?itinerary_id={itinerary}", headers=headers)).json()
    assert len(listing["tickets"]) == 3
    first = listing["tickets"][0]
    assert first["printed"] is False and first["code"] is None
    printed = await (await client.post(f"/api/v1/tickets/{first['id']}/print", headers=headers)).json()
    assert printed["printed"] and printed["code"].startswith("PG1") and len(printed["short_code"]) == 20
    assert printed["print_count"] == 1  # the answer counts the print it made
    # Masked, the code is the short code that prints, with only its last four digits showing.
    assert first["display_code"] == "••••• ••••• ••••• •" + printed["short_code"][-4:]
    assert printed["display_code"].replace(" ", "") == printed["short_code"]
    pdf = await client.post(f"/api/v1/tickets/{first['id']}/print?format=pdf", headers=headers)
    assert pdf.content_type == "application/pdf" and (await pdf.read()).startswith(b"%PDF")
    deleted = await client.delete(f"/api/v1/tickets/{listing['tickets'][1]['id']}", headers=headers)
    assert (await deleted.json())["available"] == 8
    again = await client.delete(f"/api/v1/tickets/{listing['tickets'][1]['id']}", headers=headers)
    assert again.status == 404


@pytest.mark.parametrize(
    "body, field",
    [
        ({"quantity": 0, "itinerary_id": 1, "services": [1]}, "quantity"),
        ({"quantity": "lots", "itinerary_id": 1, "services": [1]}, "quantity"),
        ({"quantity": 1, "itinerary_id": 1, "services": "1"}, "services"),
        ({"quantity": 1, "itinerary_id": 1, "services": [True]}, "services"),
        ({"quantity": 1, "itinerary_id": 1, "services": []}, "services"),
        ({"quantity": 1, "itinerary_id": 999999, "services": [1]}, "itinerary_id"),
        ({"quantity": 11, "itinerary_id": None, "services": [1]}, "itinerary_id"),
        ({"quantity": 11, "itinerary_id": "x' OR 1=1 --", "services": [1]}, "itinerary_id"),
    ],
)
async def test_bad_generation_requests_get_field_errors_and_write_nothing(client, config, body, field):
    headers = await customer(client, "pacifico")
    before = db_rows(config, "SELECT COUNT(*) FROM tickets")
    resp = await client.post("/api/v1/tickets/generate", headers=headers, json=body)
    assert resp.status == 400
    error = await api_error(resp)
    assert error["code"] == "invalid" and field in error["fields"]
    assert db_rows(config, "SELECT COUNT(*) FROM tickets") == before


async def test_more_than_the_balance_is_refused_even_concurrently(client, config):
    headers = await customer(client, "pacifico")
    itinerary, services = await open_itinerary(client, headers)
    body = {"quantity": 4, "itinerary_id": itinerary, "services": services[:1]}
    responses = await asyncio.gather(
        *(client.post("/api/v1/tickets/generate", headers=headers, json=body) for _ in range(6))
    )
    assert sorted(r.status for r in responses) == [201, 201, 400, 400, 400, 400]
    balance = await (await client.get("/api/v1/tickets/balance", headers=headers)).json()
    assert balance == {"purchased": 10, "generated": 8, "available": 2}


async def test_another_companys_tickets_do_not_exist_for_you(client, config):
    ticket_id, itinerary = db_rows(
        config,
        "SELECT t.id, t.itinerary_id FROM tickets t JOIN companies c ON "
        "c.id = t.company_id WHERE c.tax_id = '0991234567001' LIMIT 1",
    )[0]
    headers = await customer(client, "pacifico")
    for method, path in (
        ("GET", f"/api/v1/tickets/{ticket_id}"),
        ("POST", f"/api/v1/tickets/{ticket_id}/print"),
        ("DELETE", f"/api/v1/tickets/{ticket_id}"),
    ):
        resp = await client.request(method, path, headers=headers)
        assert resp.status == 404 and (await api_error(resp))["code"] == "not_found"
    listing = await (await client.get(f"/api/v1/tickets?itinerary_id={itinerary}", headers=headers)).json()
    assert listing["tickets"] == []
    assert db_rows(config, "SELECT print_count, deleted_at FROM tickets WHERE id = ?", (ticket_id,))[0][1] is None


async def test_staff_and_anonymous_callers_are_refused(client):
    assert (await client.get("/api/v1/tickets/balance")).status == 401
    headers = await customer(client, "supervisor")
    resp = await client.get("/api/v1/tickets/balance", headers=headers)
    assert resp.status == 403 and (await api_error(resp))["code"] == "forbidden"


async def test_used_ticket_can_be_neither_printed_nor_deleted(client, config):
    headers = await customer(client, "andina", "Exportadora Andina S.A.")
    ticket_id = db_rows(
        config,
        "SELECT t.id FROM tickets t JOIN companies c ON c.id = t.company_id WHERE "
        "c.tax_id = '0991234567001' ORDER BY t.id LIMIT 1",
    )[0][0]
    db_execute(config, "UPDATE tickets SET used_at = '2026-11-20T10:00' WHERE id = ?", (ticket_id,))
    for method, path in (("POST", f"/api/v1/tickets/{ticket_id}/print"), ("DELETE", f"/api/v1/tickets/{ticket_id}")):
        resp = await client.request(method, path, headers=headers)
        assert resp.status == 409 and (await api_error(resp))["code"] == "used"


@pytest.fixture
def keys_looked_at_rarely(monkeypatch):
    """This worker does not look for new signing keys during the test (another worker rotates one)."""
    monkeypatch.setattr(server.tickets, "KEYS_CHECK_SECONDS", 3600)


# SQLite only: on PostgreSQL a rotation reaches every node's key ring through NOTIFY with its commit, so no
# node is left not knowing a key the database has (the situation this test sets up by hand).
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_tickets_signed_with_a_key_another_worker_just_rotated_in_list_and_print(keys_looked_at_rarely, client):
    app = client.server.app
    db = app[DB]
    company = await db.read(lambda d: scalar(d, "SELECT id FROM companies WHERE tax_id = '1790012345001'"))
    headers = await customer(client, "pacifico")
    itinerary, services = await open_itinerary(client, headers)

    async def ticket_with_a_new_key() -> tuple[int, KeyRing]:
        """What another worker does: rotate the signing key, then generate a ticket signed with it."""
        await db.write(rotate_signing_key, now=datetime.now(UTC))
        theirs = await db.read(load_keys)
        assert theirs.current not in app[KEYS].signing
        reference = f"ROT-{theirs.current}"
        values = {"company_id": company, "quantity": 1, "reference": reference}
        purchase = await db.write(record_purchase, values, now=datetime.now(UTC))
        await db.write(confirm_purchase, purchase, now=datetime.now(UTC))
        values = {"quantity": 1, "itinerary_id": itinerary, "services": services[:1]}
        done = await db.write(generate_tickets, theirs, company, None, values, datetime.now(UTC))
        sql = "SELECT id FROM tickets WHERE generation_id = ?"
        return await db.read(lambda d: scalar(d, sql, (done["generation_id"],))), theirs

    # Each way in meets a key this worker has not loaded yet.
    await ticket_with_a_new_key()
    listing = await client.get(f"/api/v1/tickets?itinerary_id={itinerary}", headers=headers)
    assert listing.status == 200, await listing.text()
    ticket_id, _ = await ticket_with_a_new_key()
    assert (await client.get(f"/api/v1/tickets/{ticket_id}", headers=headers)).status == 200
    await ticket_with_a_new_key()
    assert (await client.get(f"/tickets/itinerary/{itinerary}", headers=headers)).status == 200
    ticket_id, theirs = await ticket_with_a_new_key()
    printed = await client.post(f"/api/v1/tickets/{ticket_id}/print", headers=headers)
    assert printed.status == 200, await printed.text()
    parsed = read_code((await printed.json())["code"], theirs)[1]
    assert parsed is not None and parsed.status == "valid"
    assert (parsed.key_id, parsed.ticket_id) == (theirs.current, ticket_id)
    ticket_id, _ = await ticket_with_a_new_key()
    pdf = await client.post(f"/api/v1/tickets/{ticket_id}/print?format=pdf", headers=headers)
    assert pdf.status == 200 and (await pdf.read()).startswith(b"%PDF")
