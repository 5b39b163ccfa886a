"""Billing's purchases at port scale, through the real app and SQLite: payment details, confirmation asked
first, void and correction that never go below what is generated, CSV import, search and keyset pages."""

from __future__ import annotations

import html
import io
import re

from tests.helpers import alert_text, count, db_rows, field_errors, get_form, login

ANDINA = "0991234567001"  # demo: 20 confirmed (VEN-000101), 6 generated
PACIFICO = "1790012345001"  # demo: VEN-000103, 5 awaiting payment


def purchase_id(config, reference: str) -> int:
    return db_rows(config, "SELECT id FROM purchases WHERE reference = ?", (reference,))[0][0]


def balance(config, tax_id: str) -> tuple[int, int]:
    return db_rows(
        config,
        "SELECT b.confirmed, b.active_tickets FROM balances b JOIN companies c ON c.id = b.company_id "
        "WHERE c.tax_id = ?",
        (tax_id,),
    )[0]


def row_of(page: str, reference: str) -> str:
    return page.split(f'data-reference="{reference}"')[1].split("</tr>")[0]


def csv_upload(text: str) -> io.BytesIO:
    upload = io.BytesIO(text.encode())
    upload.name = "purchases.csv"
    return upload


async def test_confirming_a_payment_says_what_happens_then_keeps_bank_reference_date_and_who(client, config):
    await login(client, "facturacion")
    purchase = purchase_id(config, "VEN-000103")
    page, hidden = await get_form(client, f"/billing/purchases/{purchase}/confirm")
    what = html.unescape(page.split('id="what-will-happen"')[1].split("</section>")[0])
    assert "los 5 tickets se suman al saldo de la empresa" in what
    assert db_rows(config, "SELECT status FROM purchases WHERE id = ?", (purchase,)) == [("pending",)]
    # Bad values: each at its field, nothing changed.
    resp = await client.post(
        f"/billing/purchases/{purchase}/confirm", data={**hidden, "bank_reference": "", "paid_on": "2999-01-01"}
    )
    assert resp.status == 400
    assert set(field_errors(await resp.text())) == {"bank_reference", "paid_on"}
    assert balance(config, PACIFICO) == (10, 0)
    resp = await client.post(
        f"/billing/purchases/{purchase}/confirm",
        data={**hidden, "bank_reference": "BP-778812", "paid_on": "2026-01-15"},
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == "/billing/purchases"
    page = await (await client.get("/billing/purchases")).text()
    assert alert_text(page) == "Pago confirmado; los tickets están en el saldo de la empresa."
    row = row_of(page, "VEN-000103")
    assert "BP-778812 · 2026-01-15" in row and "facturacion" in row and "Pago confirmado" in row
    assert balance(config, PACIFICO) == (15, 0)
    # The result is shown once: a Refresh shows the list without it.
    assert alert_text(await (await client.get("/billing/purchases")).text()) == ""


async def test_void_and_correction_never_leave_the_balance_below_what_is_generated(client, config):
    await login(client, "facturacion")
    purchase = purchase_id(config, "VEN-000101")
    _page, hidden = await get_form(client, f"/billing/purchases/{purchase}/void")
    resp = await client.post(f"/billing/purchases/{purchase}/void", data={**hidden, "reason": "Pago devuelto"})
    assert resp.status == 409
    assert "ya generó 6 tickets de sus 20 comprados" in alert_text(await resp.text())
    resp = await client.post(f"/billing/purchases/{purchase}/correct", data={**hidden, "quantity": "5", "reason": "x"})
    assert resp.status == 400 and set(field_errors(await resp.text())) == {"reason"}
    resp = await client.post(
        f"/billing/purchases/{purchase}/correct", data={**hidden, "quantity": "5", "reason": "Error de digitación"}
    )
    assert resp.status == 409
    assert balance(config, ANDINA) == (20, 6)
    assert db_rows(config, "SELECT quantity, status FROM purchases WHERE id = ?", (purchase,)) == [(20, "confirmed")]
    # Down to exactly what is generated is allowed, and the old quantity is kept with the reason.
    resp = await client.post(
        f"/billing/purchases/{purchase}/correct", data={**hidden, "quantity": "6", "reason": "Error de digitación"}
    )
    assert "Compra corregida." in alert_text(await resp.text())
    assert balance(config, ANDINA) == (6, 6)
    assert db_rows(config, "SELECT old_quantity, new_quantity, reason FROM purchase_corrections") == [
        (20, 6, "Error de digitación")
    ]
    # A pending purchase is voided without touching the balance, and cannot be confirmed afterwards.
    pending = purchase_id(config, "VEN-000103")
    resp = await client.post(f"/billing/purchases/{pending}/void", data={**hidden, "reason": "Cliente desistió"})
    page = await resp.text()
    assert "Compra anulada." in alert_text(page) and "Anulada" in row_of(page, "VEN-000103")
    assert balance(config, PACIFICO) == (10, 0)
    payment = {**hidden, "bank_reference": "B-1", "paid_on": "2026-01-02"}
    assert (await client.post(f"/billing/purchases/{pending}/confirm", data=payment)).status == 409
    assert balance(config, PACIFICO) == (10, 0)


async def test_csv_import_names_each_bad_line_and_field_and_saves_nothing(client, config):
    await login(client, "facturacion")
    page, hidden = await get_form(client, "/billing/purchases")
    before = count(config, "purchases")
    bad = (
        f"tax_id,quantity,reference\n{ANDINA},4,IMP-1\n9999999999999,2,IMP-2\n{PACIFICO},cero,IMP-3\n"
        f"{ANDINA},1,VEN-000101\n{PACIFICO},1,IMP-5\n{PACIFICO},1,IMP-5\n"
    )
    resp = await client.post("/billing/purchases/import", data={**hidden, "file": csv_upload(bad)})
    assert resp.status == 400
    message = alert_text(await resp.text())
    for line, field in ((3, "tax_id"), (4, "quantity"), (5, "reference"), (7, "reference")):
        assert f"{line}: {field}:" in message, message
    assert "2: " not in message and "6: " not in message
    assert count(config, "purchases") == before
    good = f"tax_id,quantity,reference\n{ANDINA},4,IMP-1\n{PACIFICO.lower()},2,IMP-2\n"
    resp = await client.post("/billing/purchases/import", data={**hidden, "file": csv_upload(good)})
    assert "Importado: 2 compras (en espera de pago)." in alert_text(await resp.text())
    assert db_rows(config, "SELECT status FROM purchases WHERE reference LIKE 'IMP-%'") == [("pending",)] * 2


async def test_search_status_filter_and_keyset_pages_stable_under_inserts(client, config):
    await login(client, "facturacion")
    _page, hidden = await get_form(client, "/billing/purchases")
    rows = "".join(f"{PACIFICO},1,LOTE-{n:03d}\n" for n in range(120))
    await client.post(
        "/billing/purchases/import", data={**hidden, "file": csv_upload(f"tax_id,quantity,reference\n{rows}")}
    )

    async def references(path: str) -> tuple[list[str], str | None]:
        refs, links = await listed(path)
        return refs, links.get("next")

    async def listed(path: str) -> tuple[list[str], dict[str, str]]:
        page = await (await client.get(path)).text()
        links = {m[1]: html.unescape(m[0]) for m in re.findall(r'href="([^"]+)" rel="(next|prev)"', page)}
        return re.findall(r'data-reference="([^"]+)"', page), links

    first, older = await references("/billing/purchases?q=lote")
    assert first[0] == "LOTE-119" and len(first) == 50 and older
    # A purchase recorded meanwhile does not shift the next page.
    await client.post(
        "/billing/purchases", data={**hidden, "company": PACIFICO, "quantity": "1", "reference": "LOTE-X"}
    )
    second, older = await references(older)
    assert second[0] == "LOTE-069" and second[-1] == "LOTE-020"
    third, older = await references(older)
    assert third == [f"LOTE-{n:03d}" for n in range(19, -1, -1)] and older is None
    # "Newer" from the last page leads back to the page before it.
    _refs, links = await listed(f"/billing/purchases?q=lote&after={purchase_id(config, 'LOTE-020')}")
    assert (await listed(links["prev"]))[0] == second
    # Search by tax id or company name (its start), and filter by status.
    by_tax_id, _ = await references(f"/billing/purchases?q={ANDINA[:6]}")
    assert by_tax_id == ["VEN-000101"]
    by_name, _ = await references("/billing/purchases?q=importadora&status=pending")
    assert by_name[:2] == ["LOTE-X", "LOTE-119"] and "VEN-000102" not in by_name
    assert (await references("/billing/purchases?q=nadie"))[0] == []


async def test_the_company_picker_finds_any_company_and_the_form_takes_its_tax_id(client, config):
    await login(client, "facturacion")
    page, hidden = await get_form(client, "/billing/companies")
    companies = "".join(f"17{n:011d},Zeta Naviera {n:04d},z{n}@zeta.example,\n" for n in range(520))
    upload = io.BytesIO(f"tax_id,name,emails,phone\n{companies}".encode())
    upload.name = "companies.csv"
    resp = await client.post("/billing/companies/import", data={**hidden, "file": upload})
    assert resp.status == 200, await resp.text()
    answer = await (await client.get("/billing/purchases/companies?q=zeta naviera 051")).json()
    assert [c["name"] for c in answer["companies"]] == [f"Zeta Naviera {n:04d}" for n in range(510, 520)]
    last = f"17{519:011d}"
    assert (await (await client.get(f"/billing/purchases/companies?q={last}")).json())["companies"][0]["tax_id"] == last
    _page, hidden = await get_form(client, "/billing/purchases")
    resp = await client.post(
        "/billing/purchases", data={**hidden, "company": last, "quantity": "3", "reference": "Z-1"}
    )
    assert "Compra registrada" in alert_text(await resp.text())
    resp = await client.post(
        "/billing/purchases", data={**hidden, "company": "0000000000", "quantity": "3", "reference": "Z-2"}
    )
    assert resp.status == 400
    assert (
        field_errors(await resp.text())["company"] == "Ninguna empresa del registro de facturación tiene este RUC/RFC."
    )
    # Staff of other areas and customers get nothing from the picker.
    await client.post("/logout", data=hidden)
    await login(client, "operaciones")
    assert (await client.get("/billing/purchases/companies?q=zeta")).status == 403
