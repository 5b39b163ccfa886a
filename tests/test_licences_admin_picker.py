"""The licence administration names a serial's company by tax id, with no cap on how many companies there are."""

from __future__ import annotations

import io

from tests.helpers import alert_text, count, db_rows, field_errors, get_form, login

SERIAL = {"system": "Portgate API", "description": "API anual", "valid_until": "2030-01-31"}
LIMITS = {"max_machines": "2", "max_open_tickets": "1"}


async def import_companies(client, how_many: int) -> None:
    """Billing's CSV import of ``how_many`` companies named "Zeta Naviera NNNN", last by name after the demo's."""
    _page, hidden = await get_form(client, "/billing/companies")
    rows = "".join(f"17{n:011d},Zeta Naviera {n:04d},z{n}@zeta.example,\n" for n in range(how_many))
    upload = io.BytesIO(f"tax_id,name,emails,phone\n{rows}".encode())
    upload.name = "companies.csv"
    resp = await client.post("/billing/companies/import", data={**hidden, "file": upload})
    assert resp.status == 200, await resp.text()


async def test_a_company_past_the_first_500_gets_a_serial_by_its_tax_id(client, config):
    await login(client, "admin", language="en")
    await import_companies(client, 520)
    page, hidden = await get_form(client, "/admin/licences")
    # A text field the picker script completes, not a list of the first companies.
    assert 'name="company"' in page and 'id="company-choices"' in page and "/static/company_picker.js" in page
    assert "Zeta Naviera" not in page
    last = f"17{519:011d}"
    offered = await (await client.get(f"/billing/purchases/companies?q={last}")).json()
    assert [c["name"] for c in offered["companies"]] == ["Zeta Naviera 0519"]
    resp = await client.post(
        "/admin/licences/serials", data={**hidden, "company": last, "serial": "PG-ZETA-000519", **SERIAL, **LIMITS}
    )
    assert resp.status == 200 and alert_text(await resp.text()) == "Serial saved."
    owner = "SELECT c.tax_id FROM serials s JOIN companies c ON c.id = s.company_id WHERE s.serial = ?"
    assert db_rows(config, owner, ("PG-ZETA-000519",)) == [(last,)]
    # Editing shows the company by the tax id the field takes.
    new_id = db_rows(config, "SELECT id FROM serials WHERE serial = 'PG-ZETA-000519'")[0][0]
    edit = await (await client.get(f"/admin/licences?edit={new_id}")).text()
    assert f'value="{last}"' in edit


async def test_an_unknown_tax_id_is_refused_at_the_field_and_nothing_is_written(client, config):
    await login(client, "admin")
    _page, hidden = await get_form(client, "/admin/licences")
    before = count(config, "serials")
    resp = await client.post(
        "/admin/licences/serials",
        data={**hidden, "company": "0000000000", "serial": "PG-NONE-000001", **SERIAL, **LIMITS},
    )
    assert resp.status == 400
    page = await resp.text()
    assert field_errors(page)["company"] == "Ninguna empresa tiene este RUC/RFC."
    assert 'value="0000000000"' in page  # the typed tax id stays in the field to be corrected
    assert count(config, "serials") == before
    resp = await client.post("/admin/licences/serials", data={**hidden, "company": "", **SERIAL, **LIMITS})
    assert resp.status == 400 and "company" in field_errors(await resp.text())
    assert count(config, "serials") == before
