"""The staff API of the tickets area through the real app: billing's purchases and operations' catalogue,
with the pages' per-role authorisation, keyset pages, and bad input answered 4xx with nothing written."""

from __future__ import annotations

from tests.helpers import api_error, api_token, bearer, count, db_rows

PURCHASES = "/api/v1/billing/purchases"
ANDINA = "0991234567001"
PACIFICO = "1790012345001"


async def test_billing_records_searches_pages_confirms_voids_and_corrects_purchases(client, config):
    auth = bearer(await api_token(client, "facturacion"))
    resp = await client.post(PURCHASES, json={"tax_id": PACIFICO, "quantity": 4, "reference": "ERP-1"}, headers=auth)
    assert resp.status == 201, await resp.text()
    purchase = await resp.json()
    assert purchase["status"] == "pending" and purchase["tax_id"] == PACIFICO and purchase["paid_on"] is None
    # Bad input: each field named, nothing written.
    before = count(config, "purchases")
    resp = await client.post(PURCHASES, json={"tax_id": "9999999999", "quantity": 0, "reference": ""}, headers=auth)
    assert resp.status == 400 and set((await api_error(resp))["fields"]) == {"quantity", "reference"}
    resp = await client.post(PURCHASES, json={"tax_id": "9999999999", "quantity": 1, "reference": "X"}, headers=auth)
    assert (await api_error(resp))["fields"] == {
        "tax_id": "Ninguna empresa del registro de facturación tiene este RUC/RFC."
    }
    assert count(config, "purchases") == before
    # Confirm with the bank's reference and date; a date in the future is refused.
    confirm = f"{PURCHASES}/{purchase['id']}/confirm"
    resp = await client.post(confirm, json={"bank_reference": "BP-9", "paid_on": "2999-01-01"}, headers=auth)
    assert resp.status == 400 and set((await api_error(resp))["fields"]) == {"paid_on"}
    resp = await client.post(confirm, json={"bank_reference": "BP-9", "paid_on": "2026-01-20"}, headers=auth)
    confirmed = await resp.json()
    assert (confirmed["status"], confirmed["bank_reference"], confirmed["paid_on"], confirmed["confirmed_by"]) == (
        "confirmed",
        "BP-9",
        "2026-01-20",
        "facturacion",
    )
    assert (
        await client.post(confirm, json={"bank_reference": "B", "paid_on": "2026-01-20"}, headers=auth)
    ).status == 409
    # Andina generated 6 of its 20: voiding VEN-000101 is refused, correcting it to 6 is not.
    andina = db_rows(config, "SELECT id FROM purchases WHERE reference = 'VEN-000101'")[0][0]
    resp = await client.post(f"{PURCHASES}/{andina}/void", json={"reason": "Pago devuelto"}, headers=auth)
    assert resp.status == 409 and (await api_error(resp))["code"] == "below_generated"
    resp = await client.post(
        f"{PURCHASES}/{andina}/correct", json={"quantity": 6, "reason": "Digitación"}, headers=auth
    )
    assert (await resp.json())["quantity"] == 6
    assert db_rows(config, "SELECT confirmed, active_tickets FROM balances WHERE confirmed = 6") == [(6, 6)]
    # Search and keyset pages.
    resp = await client.get(PURCHASES, params={"q": "exportadora", "limit": "1"}, headers=auth)
    page = await resp.json()
    assert [p["reference"] for p in page["purchases"]] == ["VEN-000101"] and page["next_after"] is None
    page = await (await client.get(PURCHASES, params={"limit": "2"}, headers=auth)).json()
    assert [p["reference"] for p in page["purchases"]] == ["ERP-1", "VEN-000103"] and page["prev_before"] is None
    rest = await (await client.get(PURCHASES, params={"after": page["next_after"]}, headers=auth)).json()
    assert [p["reference"] for p in rest["purchases"]] == ["VEN-000102", "VEN-000101"]
    assert rest["prev_before"] == rest["purchases"][0]["id"] and rest["next_after"] is None
    assert (await client.get(PURCHASES, params={"status": "paid"}, headers=auth)).status == 400


async def test_the_purchase_import_names_every_bad_line_and_writes_nothing(client, config):
    auth = bearer(await api_token(client, "facturacion"))
    before = count(config, "purchases")
    bad = f"tax_id,quantity,reference\n{ANDINA},2,A-1\n123,2,A-2\n{ANDINA},dos,A-3\n"
    resp = await client.post(f"{PURCHASES}/import", json={"csv": bad}, headers=auth)
    error = await api_error(resp)
    assert resp.status == 400 and "3: tax_id:" in error["fields"]["csv"] and "4: quantity:" in error["fields"]["csv"]
    assert count(config, "purchases") == before
    resp = await client.post(
        f"{PURCHASES}/import", json={"csv": f"tax_id,quantity,reference\n{ANDINA},2,A-1\n"}, headers=auth
    )
    assert resp.status == 201 and await resp.json() == {"imported": 1}
    assert count(config, "purchases") == before + 1


async def test_operations_add_edit_close_and_list_the_catalogue(client, config):
    auth = bearer(await api_token(client, "operaciones"))
    body = {
        "vessel": "Nave API",
        "voyage": "7",
        "eta": "2026-12-01T08:00",
        "etd": "2026-12-02T08:00",
        "valid_from": "2026-11-30T00:00",
        "valid_until": "2026-12-03T00:00",
    }
    resp = await client.post("/api/v1/ops/itineraries", json=body, headers=auth)
    itinerary = await resp.json()
    assert resp.status == 201 and itinerary["active"] is True
    resp = await client.put(f"/api/v1/ops/itineraries/{itinerary['id']}", json={**body, "berth": "M9"}, headers=auth)
    assert (await resp.json())["berth"] == "M9"
    resp = await client.put(f"/api/v1/ops/itineraries/{itinerary['id']}", json={**body, "etd": "x"}, headers=auth)
    assert resp.status == 400 and set((await api_error(resp))["fields"]) == {"etd"}
    resp = await client.post(f"/api/v1/ops/itineraries/{itinerary['id']}/close", headers=auth)
    assert (await resp.json())["active"] is False
    assert (await client.post(f"/api/v1/ops/itineraries/{itinerary['id']}/close", headers=auth)).status == 409
    listed = await (await client.get("/api/v1/ops/itineraries", params={"status": "closed"}, headers=auth)).json()
    assert [i["id"] for i in listed["itineraries"]] == [itinerary["id"]]
    open_ones = await (await client.get("/api/v1/itineraries", headers=auth)).json()
    assert itinerary["id"] not in [i["id"] for i in open_ones["itineraries"]]
    resp = await client.post(
        "/api/v1/ops/services", json={"code": "PESAJE", "name_es": "Pesaje", "name_en": "Weighing"}, headers=auth
    )
    service = await resp.json()
    resp = await client.put(
        f"/api/v1/ops/services/{service['id']}",
        json={"code": "PESO", "name_es": "Peso", "name_en": "Weight"},
        headers=auth,
    )
    assert (await resp.json())["code"] == "PESO"
    assert (await (await client.post(f"/api/v1/ops/services/{service['id']}/close", headers=auth)).json())[
        "active"
    ] is False
    assert (
        await client.put(
            "/api/v1/ops/services/999999", json={"code": "Z", "name_es": "Z", "name_en": "Z"}, headers=auth
        )
    ).status == 404


async def test_each_role_reaches_only_its_own_part(client):
    billing = bearer(await api_token(client, "facturacion"))
    operations = bearer(await api_token(client, "operaciones"))
    customer = bearer(await api_token(client, "pacifico"))
    for auth, path in (
        (operations, PURCHASES),
        (customer, PURCHASES),
        (billing, "/api/v1/ops/itineraries"),
        (customer, "/api/v1/ops/services"),
    ):
        resp = await client.get(path, headers=auth)
        assert resp.status == 403 and (await api_error(resp))["code"] == "forbidden"
    resp = await client.post(PURCHASES, json={"tax_id": PACIFICO, "quantity": 1, "reference": "Z"}, headers=customer)
    assert resp.status == 403
    assert (await client.get(PURCHASES)).status == 401
