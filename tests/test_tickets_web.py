"""Transactions → Tickets as the seed describes it, through the real app, SQLite and PDF pipeline."""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path

import cv2
import pypdf
import pytest
from pyzbar import pyzbar

from gate_core.codes import parse_code
from tests.dbaccess import db_execute
from tests.helpers import alert_text, as_codes, count, db_rows, field_errors, get_form, login


async def balance_of(client) -> dict[str, int]:
    page = await (await client.get("/tickets")).text()
    return {
        name: int(re.search(rf'id="balance-{name}">(?:<strong>)?(\d+)', page)[1])
        for name in ("confirmed", "generated", "available")
    }


async def open_itinerary_and_services(client) -> tuple[str, list[str]]:
    page = await (await client.get("/tickets/generate?quantity=1")).text()
    itinerary = re.search(r'<option value="(\d+)" >MSC Guayaquil', page)[1]
    services = re.findall(r'name="services" value="(\d+)"', page)
    return itinerary, services


async def generate(client, quantity: int) -> str:
    itinerary, services = await open_itinerary_and_services(client)
    _page, hidden = await get_form(client, f"/tickets/generate?quantity={quantity}")
    resp = await client.post(
        "/tickets/generate",
        data=[
            *hidden.items(),
            ("quantity", str(quantity)),
            ("itinerary_id", itinerary),
            ("services", services[0]),
            ("services", services[1]),
        ],
    )
    page = await resp.text()
    assert resp.status == 200, page
    return re.search(r'id="transaction-no">([^<]+)<', page)[1]


async def test_balance_generate_in_parts_and_transaction_number(client, config):
    await login(client, "pacifico")
    assert await balance_of(client) == {"confirmed": 10, "generated": 0, "available": 10}
    page = await (await client.get("/tickets")).text()
    assert "No existen registros" in page  # no generated tickets yet
    tx1 = await generate(client, 4)
    tx2 = await generate(client, 6)
    assert tx1 != tx2 and tx1.startswith("TX")
    assert await balance_of(client) == {"confirmed": 10, "generated": 10, "available": 0}
    # Nothing left: asking for more is refused at the field, nothing written.
    before = count(config, "tickets")
    resp = await client.get("/tickets/generate?quantity=1")
    assert resp.status == 400
    assert field_errors(await resp.text())["quantity"] == "Puede generar como máximo 0 tickets (su saldo)."
    assert count(config, "tickets") == before


async def test_generation_form_errors_are_shown_at_each_field(client, config):
    await login(client, "pacifico")
    _page, hidden = await get_form(client, "/tickets/generate?quantity=2")
    resp = await client.post("/tickets/generate", data={**hidden, "quantity": "abc", "itinerary_id": ""})
    errors = field_errors(await resp.text())
    assert set(errors) == {"quantity", "itinerary_id", "services"}
    assert count(config, "generations") == 1  # only the demo's


async def test_concurrent_generations_never_overspend(client, config):
    await login(client, "pacifico")
    itinerary, services = await open_itinerary_and_services(client)
    _page, hidden = await get_form(client, "/tickets/generate?quantity=1")
    data = [*hidden.items(), ("quantity", "7"), ("itinerary_id", itinerary), ("services", services[0])]
    responses = await asyncio.gather(*(client.post("/tickets/generate", data=data) for _ in range(5)))
    statuses = sorted(r.status for r in responses)
    assert statuses == [200, 400, 400, 400, 400]
    assert await balance_of(client) == {"confirmed": 10, "generated": 7, "available": 3}
    company = db_rows(config, "SELECT id FROM companies WHERE tax_id = '1790012345001'")[0][0]
    assert db_rows(config, "SELECT COUNT(*) FROM tickets WHERE company_id = ?", (company,))[0][0] == 7


async def test_masked_until_printed_then_pdf_with_a_code_the_gate_accepts(client, config, tmp_path):
    await login(client, "pacifico")
    await generate(client, 2)
    itinerary_id = re.search(r"/tickets/itinerary/(\d+)", await (await client.get("/tickets")).text())[1]
    page = await (await client.get(f"/tickets/itinerary/{itinerary_id}")).text()
    ticket_ids = re.findall(r'data-ticket="(\d+)" data-printed="0"', page)
    assert len(ticket_ids) == 2
    assert page.count("No impreso") >= 2
    # The masked code is the code that prints, hidden but for its last four digits, in the same blocks.
    short_codes = dict(db_rows(config, "SELECT id, short_code FROM tickets WHERE id IN (?, ?)", tuple(ticket_ids)))
    for ticket_id in ticket_ids:
        masked = row_code(page, ticket_id)
        assert masked == "••••• ••••• ••••• •" + short_codes[int(ticket_id)][-4:]
    masked_before = row_code(page, ticket_ids[0])
    _p, hidden = await get_form(client, f"/tickets/itinerary/{itinerary_id}")
    resp = await client.post(f"/tickets/{ticket_ids[0]}/print", data=hidden)
    assert resp.status == 200 and resp.content_type == "application/pdf"
    pdf = tmp_path / "ticket.pdf"
    pdf.write_bytes(await resp.read())
    decoded = rasterise_and_decode(pdf)
    app_keys = client.app[__import__("server.tickets", fromlist=["KEYS"]).KEYS]
    full = [c for c in decoded if c.startswith("PG1")]
    assert len(full) == 1
    parsed = parse_code(full[0], app_keys.verify)
    assert parsed.valid and parsed.ticket_id == int(ticket_ids[0])
    short = db_rows(config, "SELECT short_code FROM tickets WHERE id = ?", (int(ticket_ids[0]),))[0][0]
    assert short in decoded  # the Code 128-C barcode for 1-D readers
    page = await (await client.get(f"/tickets/itinerary/{itinerary_id}")).text()
    assert f'data-ticket="{ticket_ids[0]}" data-printed="1"' in page
    # The row now shows the paper's code: the same blocks, the same last four digits as the mask had.
    printed_code = row_code(page, ticket_ids[0])
    assert printed_code.replace(" ", "") == short and printed_code[-4:] == masked_before[-4:]
    assert printed_code in pypdf.PdfReader(pdf).pages[0].extract_text()
    # Reprinting works any number of times and yields the same code.
    again = await client.post(f"/tickets/{ticket_ids[0]}/print", data=hidden)
    again_pdf = tmp_path / "again.pdf"
    again_pdf.write_bytes(await again.read())
    assert full[0] in rasterise_and_decode(again_pdf)
    assert db_rows(config, "SELECT print_count FROM tickets WHERE id = ?", (int(ticket_ids[0]),)) == [(2,)]


def row_code(page: str, ticket_id: str) -> str:
    """The code a ticket's row shows in the list."""
    return re.search(rf'data-ticket="{ticket_id}".*?<code class="ticket">([^<]+)</code>', page, re.S)[1]


def rasterise_and_decode(pdf: Path) -> list[str]:
    """What a camera sees: the PDF rendered at 150 dpi (pdftoppm), decoded with pyzbar."""
    subprocess.run(["pdftoppm", "-r", "150", "-gray", "-png", str(pdf), str(pdf.with_suffix(""))], check=True)
    image = cv2.imread(str(next(pdf.parent.glob(pdf.stem + "*.png"))), cv2.IMREAD_GRAYSCALE)
    return as_codes([s.data.decode() for s in pyzbar.decode(image)])


async def test_delete_unused_returns_one_to_balance_and_used_ticket_is_locked(client, config):
    await login(client, "andina", profile="Exportadora Andina S.A.")
    before = await balance_of(client)
    itinerary_id = re.search(r"/tickets/itinerary/(\d+)", await (await client.get("/tickets")).text())[1]
    page, hidden = await get_form(client, f"/tickets/itinerary/{itinerary_id}")
    ids = re.findall(r'data-ticket="(\d+)"', page)
    confirm = await (await client.get(f"/tickets/{ids[0]}/delete")).text()
    assert "no se puede deshacer" in confirm
    resp = await client.post(f"/tickets/{ids[0]}/delete", data=hidden)
    assert resp.status == 200 and "volvió a su saldo" in await resp.text()
    after = await balance_of(client)
    assert after["available"] == before["available"] + 1 and after["generated"] == before["generated"] - 1
    assert f'data-ticket="{ids[0]}"' not in await (await client.get(f"/tickets/itinerary/{itinerary_id}")).text()

    # A ticket used at the gate: no print, no delete.
    db_execute(config, "UPDATE tickets SET used_at = '2026-11-20T10:00' WHERE id = ?", (int(ids[1]),))
    for path in (f"/tickets/{ids[1]}/print", f"/tickets/{ids[1]}/delete"):
        resp = await client.post(path, data=hidden)
        assert resp.status == 409
        assert "ya fue usado en la garita" in await resp.text()
    assert (await balance_of(client)) == after


async def test_another_company_cannot_see_print_or_delete(client, config):
    andina_ticket = db_rows(
        config,
        "SELECT t.id, t.itinerary_id FROM tickets t JOIN companies c ON "
        "c.id = t.company_id WHERE c.tax_id = '0991234567001' LIMIT 1",
    )[0]
    await login(client, "pacifico")
    _p, hidden = await get_form(client, "/tickets")
    assert (await client.get(f"/tickets/itinerary/{andina_ticket[1]}")).status == 404
    assert (await client.post(f"/tickets/{andina_ticket[0]}/print", data=hidden)).status == 404
    assert (await client.get(f"/tickets/{andina_ticket[0]}/delete")).status == 404
    assert (await client.post(f"/tickets/{andina_ticket[0]}/delete", data=hidden)).status == 404
    assert (
        db_rows(config, "SELECT deleted_at, print_count FROM tickets WHERE id = ?", (andina_ticket[0],))[0][0] is None
    )


async def test_staff_record_and_confirm_purchase_then_operations_catalogue(client, config):
    await login(client, "facturacion")
    page, hidden = await get_form(client, "/billing/purchases")
    company, tax_id = db_rows(config, "SELECT id, tax_id FROM companies WHERE name LIKE 'Importadora%'")[0]
    resp = await client.post("/billing/purchases", data={**hidden, "company": tax_id, "quantity": "0", "reference": ""})
    assert set(field_errors(await resp.text())) == {"quantity", "reference"}
    resp = await client.post(
        "/billing/purchases", data={**hidden, "company": tax_id, "quantity": "3", "reference": "VEN-9"}
    )
    page = await resp.text()
    purchase = re.search(r"/billing/purchases/(\d+)/confirm", page.split('data-reference="VEN-9"')[1])[1]
    payment = {**hidden, "bank_reference": "BP-1", "paid_on": "2026-01-02"}
    await client.post(f"/billing/purchases/{purchase}/confirm", data=payment)
    # Confirming twice does not add twice.
    assert (await client.post(f"/billing/purchases/{purchase}/confirm", data=payment)).status == 409
    assert db_rows(config, "SELECT confirmed FROM balances WHERE company_id = ?", (int(company),)) == [(13,)]

    await client.post("/logout", data=hidden)
    await login(client, "operaciones")
    _p, hidden = await get_form(client, "/ops/itineraries")
    resp = await client.post(
        "/ops/itineraries",
        data={
            **hidden,
            "vessel": "Nave",
            "voyage": "1",
            "eta": "2026-12-01T08:00",
            "etd": "2026-11-30T08:00",
            "valid_from": "mañana",
            "valid_until": "",
        },
    )
    errors = field_errors(await resp.text())
    assert set(errors) == {"etd", "valid_from", "valid_until"}
    csv_text = (
        "vessel,voyage,eta,etd,valid_from,valid_until\nNave A,1,2026-12-01T08:00,2026-12-02T08:00,"
        "2026-11-30T00:00,2026-12-03T00:00\nNave B,2,bad,2026-12-02T08:00,2026-11-30T00:00,2026-12-03\n"
    )
    import io

    upload = io.BytesIO(csv_text.encode())
    upload.name = "it.csv"
    before = count(config, "itineraries")
    resp = await client.post("/ops/itineraries/import", data={**hidden, "file": upload})
    assert resp.status == 400 and "Línea 3" in alert_text(await resp.text())
    assert count(config, "itineraries") == before


@pytest.mark.parametrize("user", ["facturacion", "operaciones", "supervisor"])
async def test_staff_do_not_see_customer_ticket_pages(client, user):
    await login(client, user)
    assert (await client.get("/tickets")).status == 403


async def test_services_form_and_csv_import(client, config):
    import io

    await login(client, "operaciones")
    _p, hidden = await get_form(client, "/ops/services")
    resp = await client.post("/ops/services", data={**hidden, "code": "bad code!", "name_es": "", "name_en": "X"})
    assert set(field_errors(await resp.text())) == {"code", "name_es"}
    before = count(config, "services")
    bad = io.BytesIO(b"code,name_es,name_en\nPESAJE,Pesaje,Weighing\nMAL CODE,,\n")
    bad.name = "s.csv"
    resp = await client.post("/ops/services/import", data={**hidden, "file": bad})
    assert resp.status == 400 and "Línea 3" in alert_text(await resp.text())
    assert count(config, "services") == before
    good = io.BytesIO("code,name_es,name_en\nPESAJE,Pesaje,Weighing\nAFORO,Aforo físico,Physical inspection\n".encode())
    good.name = "s.csv"
    resp = await client.post("/ops/services/import", data={**hidden, "file": good})
    assert "Importado: 2 servicios." in alert_text(await resp.text())
    assert count(config, "services") == before + 2
