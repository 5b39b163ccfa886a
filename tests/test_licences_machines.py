"""Licence serials and their machines through the real app: limits, deactivation quota, CSV, isolation."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta

from server.helpdesk.settings import HELPDESK_SETTINGS
from tests.helpdesk_support import (
    ANDINA,
    ANDINA_PORTAL_SERIAL,
    PACIFICO,
    PACIFICO_SERIAL,
    new_serial,
    serial_id,
    token_as,
)
from tests.helpers import alert_text, api_error, db_rows, field_errors, get_form, login


async def activate(client, headers, serial: int, name: str, fingerprint: str):
    return await client.post(
        f"/api/v1/licences/{serial}/machines", json={"name": name, "fingerprint": fingerprint}, headers=headers
    )


async def test_serial_list_shows_validity_status_and_counts_and_filters(client, config):
    await login(client, "andina", language="en", profile="Exportadora Andina S.A.")
    page = await (await client.get("/licences")).text()
    rows = re.findall(r'<tr data-serial="(\d+)" data-status="(\w+)">', page)
    assert len(rows) == 3  # Andina's own serials only
    assert PACIFICO_SERIAL not in page
    assert {status for _id, status in rows} == {"valid", "expired"}
    assert "2 / 3" in page  # two of three machines active on the portal serial
    only_mobile = await (await client.get("/licences?system=Portgate+Mobile")).text()
    assert len(re.findall(r"<tr data-serial=", only_mobile)) == 1
    searched = await (await client.get("/licences?q=8092589D")).text()
    assert re.findall(r'<code class="serial">([^<]+)</code>', searched) == [ANDINA_PORTAL_SERIAL]


async def test_machine_limit_deactivation_frees_a_slot_and_reactivation_counts(client, config):
    admin = await token_as(client, "admin")
    andina = await token_as(client, "andina", "customer_admin")
    serial = await new_serial(client, admin, config, ANDINA, max_machines=2)
    assert (await activate(client, andina, serial["id"], "PC 1", "FP-T-0001")).status == 201
    second = await activate(client, andina, serial["id"], "PC 2", "FP-T-0002")
    assert second.status == 201
    third = await activate(client, andina, serial["id"], "PC 3", "FP-T-0003")
    assert third.status == 409
    error = await api_error(third)
    assert error["code"] == "machine_limit"
    assert "2 machines active" in error["message"]
    counts = (await (await client.get(f"/api/v1/licences/{serial['id']}", headers=andina)).json())["machines"]
    assert counts == {"total": 2, "active": 2, "available": 0, "registered": 2}
    # The same fingerprint twice is refused as such, not as a new machine.
    again = await activate(client, andina, serial["id"], "PC 1 bis", "FP-T-0001")
    assert (await api_error(again))["code"] == "already_active"

    machine_id = (await second.json())["id"]
    resp = await client.post(f"/api/v1/licences/{serial['id']}/machines/{machine_id}/deactivate", headers=andina)
    assert resp.status == 200 and (await resp.json())["active"] is False
    counts = (await (await client.get(f"/api/v1/licences/{serial['id']}", headers=andina)).json())["machines"]
    assert counts == {"total": 2, "active": 1, "available": 1, "registered": 2}
    assert (await activate(client, andina, serial["id"], "PC 3", "FP-T-0003")).status == 201
    # Reactivating the old machine would be a third active one.
    resp = await client.post(f"/api/v1/licences/{serial['id']}/machines/{machine_id}/activate", headers=andina)
    assert (await api_error(resp))["code"] == "machine_limit"
    active = db_rows(config, "SELECT COUNT(*) FROM machines WHERE serial_id = ? AND active = 1", (serial["id"],))
    assert active == [(2,)]


async def test_deactivation_quota_stops_passing_a_serial_round(client, config):
    quota = client.app[HELPDESK_SETTINGS].max_deactivations
    admin = await token_as(client, "admin")
    andina = await token_as(client, "andina", "customer_admin")
    serial = await new_serial(client, admin, config, ANDINA, max_machines=1)
    for n in range(quota):
        created = await activate(client, andina, serial["id"], f"PC {n}", f"FP-Q-{n:04d}")
        assert created.status == 201
        machine = (await created.json())["id"]
        resp = await client.post(f"/api/v1/licences/{serial['id']}/machines/{machine}/deactivate", headers=andina)
        assert resp.status == 200
    last = await activate(client, andina, serial["id"], "PC last", "FP-Q-LAST")
    assert last.status == 201
    resp = await client.post(
        f"/api/v1/licences/{serial['id']}/machines/{(await last.json())['id']}/deactivate", headers=andina
    )
    error = await api_error(resp)
    assert resp.status == 409 and error["code"] == "deactivation_quota"
    assert f"{quota} deactivations" in error["message"]
    # The page says the same and shows none left.
    await login(client, "andina", language="en", profile="Exportadora Andina S.A.")
    page = await (await client.get(f"/licences/{serial['id']}")).text()
    assert re.search(r'id="deactivations-left">0 ', page)


async def test_expired_serial_refuses_new_activations_saying_why(client, config):
    admin = await token_as(client, "admin")
    andina = await token_as(client, "andina", "customer_admin")
    serial = await new_serial(client, admin, config, ANDINA, days=-3)
    resp = await activate(client, andina, serial["id"], "PC", "FP-EXP-01")
    error = await api_error(resp)
    assert resp.status == 409 and error["code"] == "serial_expired"
    assert (date.today() - timedelta(days=3)).isoformat() in error["message"]
    assert db_rows(config, "SELECT COUNT(*) FROM machines WHERE serial_id = ?", (serial["id"],)) == [(0,)]


async def test_activate_and_deactivate_from_the_portal_pages(client, config):
    await login(client, "pacifico", language="en")
    sid = serial_id(config, PACIFICO_SERIAL)
    page, hidden = await get_form(client, f"/licences/{sid}")
    assert re.search(r'id="count-total">2<', page) and re.search(r'id="count-active">1<', page)
    resp = await client.post(f"/licences/{sid}/machines", data={**hidden, "name": "", "fingerprint": "x"})
    assert resp.status == 400
    assert set(field_errors(await resp.text())) == {"name", "fingerprint"}
    resp = await client.post(
        f"/licences/{sid}/machines", data={**hidden, "name": "Caja 2", "fingerprint": "FP-P1-0002"}
    )
    page = await resp.text()
    assert resp.status == 200 and alert_text(page) == "The machine was activated."
    assert re.search(r'id="count-available">0<', page)
    resp = await client.post(
        f"/licences/{sid}/machines", data={**hidden, "name": "Caja 3", "fingerprint": "FP-P1-0003"}
    )
    assert resp.status == 409 and "already has its 2 machines active" in await resp.text()
    machine = db_rows(config, "SELECT id FROM machines WHERE fingerprint = 'FP-P1-0002'")[0][0]
    resp = await client.post(f"/licences/{sid}/machines/{machine}/deactivate", data=hidden)
    page = await resp.text()
    assert resp.status == 200 and re.search(r'id="count-available">1<', page)
    inactive = await (await client.get(f"/licences/{sid}?show=inactive")).text()
    assert f'data-machine="{machine}" data-active="0"' in inactive
    detail = await (await client.get(f"/licences/{sid}/machines/{machine}")).text()
    assert 'id="machine-fingerprint">FP-P1-0002<' in detail


async def test_machine_csv_is_a_quoted_attachment_with_every_machine(client, config):
    admin = await token_as(client, "admin")
    andina = await token_as(client, "andina", "customer_admin")
    serial = await new_serial(client, admin, config, ANDINA, max_machines=3)
    await activate(client, andina, serial["id"], 'Caja "principal", piso 2', "FP-CSV-0001")
    await activate(client, andina, serial["id"], "=HYPERLINK(evil)", "FP-CSV-0002")
    resp = await client.get(f"/api/v1/licences/{serial['id']}/machines/export", headers=andina)
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/csv")
    assert resp.headers["Content-Disposition"].startswith("attachment;")
    rows = list(csv.reader(io.StringIO((await resp.read()).decode("utf-8-sig"))))
    assert rows[0][:5] == ["serial", "system", "name", "fingerprint", "status"]
    assert [r[2] for r in rows[1:]] == ['Caja "principal", piso 2', "'=HYPERLINK(evil)"]
    assert all(r[0] == serial["serial"] and r[4] == "active" for r in rows[1:])
    # The page link serves the same file.
    await login(client, "andina", language="en", profile="Exportadora Andina S.A.")
    page_csv = await client.get(f"/licences/{serial['id']}/machines.csv")
    assert (await page_csv.read()) == (await resp.read())


async def test_a_company_cannot_see_another_companys_serials_or_machines(client, config):
    pacifico_serial = serial_id(config, PACIFICO_SERIAL)
    machine = db_rows(config, "SELECT id FROM machines WHERE serial_id = ?", (pacifico_serial,))[0][0]
    andina = await token_as(client, "andina", "customer_admin")
    for path in (
        f"/api/v1/licences/{pacifico_serial}",
        f"/api/v1/licences/{pacifico_serial}/machines",
        f"/api/v1/licences/{pacifico_serial}/machines/{machine}",
        f"/api/v1/licences/{pacifico_serial}/machines/export",
    ):
        resp = await client.get(path, headers=andina)
        assert resp.status == 404, path
    resp = await client.post(f"/api/v1/licences/{pacifico_serial}/machines/{machine}/deactivate", headers=andina)
    assert resp.status == 404
    resp = await activate(client, andina, pacifico_serial, "Intruso", "FP-INTRUDER")
    assert resp.status == 404
    listed = await (await client.get("/api/v1/licences", headers=andina)).json()
    assert PACIFICO_SERIAL not in {s["serial"] for s in listed["serials"]}

    await login(client, "andina", language="en", profile="Exportadora Andina S.A.")
    for path in (
        f"/licences/{pacifico_serial}",
        f"/licences/{pacifico_serial}/machines/{machine}",
        f"/licences/{pacifico_serial}/machines.csv",
    ):
        assert (await client.get(path)).status == 404, path
    _page, hidden = await get_form(client, "/licences")
    resp = await client.post(f"/licences/{pacifico_serial}/machines/{machine}/deactivate", data=hidden)
    assert resp.status == 404
    assert db_rows(config, "SELECT active FROM machines WHERE id = ?", (machine,)) == [(1,)]
    assert company_serials_untouched(config)


def company_serials_untouched(config) -> bool:
    return db_rows(
        config,
        "SELECT COUNT(*) FROM machine_deactivations WHERE serial_id IN "
        "(SELECT id FROM serials WHERE company_id = (SELECT id FROM companies WHERE tax_id = ?))",
        (PACIFICO,),
    ) == [(0,)]


async def test_admin_manages_serials_and_policies_with_field_errors(client, config):
    await login(client, "admin", language="en")
    page, hidden = await get_form(client, "/admin/licences")
    resp = await client.post("/admin/licences/serials", data={**hidden, "system": "", "max_machines": "-1"})
    assert resp.status == 400
    errors = field_errors(await resp.text())
    assert {"company", "system", "description", "valid_until", "max_machines", "max_open_tickets"} <= set(errors)
    company = db_rows(config, "SELECT id FROM companies WHERE tax_id = ?", (PACIFICO,))[0][0]
    resp = await client.post(
        "/admin/licences/serials",
        data={
            **hidden,
            "company_id": str(company),
            "serial": "pg-test-000001",
            "system": "Portgate API",
            "description": "API anual",
            "valid_until": "2030-01-31",
            "max_machines": "3",
            "max_open_tickets": "1",
        },
    )
    assert resp.status == 200 and alert_text(await resp.text()) == "Serial saved."
    new_id = serial_id(config, "PG-TEST-000001")
    resp = await client.post(
        "/admin/licences/policies",
        data={
            **hidden,
            "number": "POL-X-1",
            "serial_id": str(new_id),
            "description": "Soporte",
            "registered_on": "2025-02-01",
            "valid_until": "2025-01-01",
        },
    )
    assert resp.status == 400 and "valid_until" in field_errors(await resp.text())
    resp = await client.post(
        "/admin/licences/policies",
        data={
            **hidden,
            "number": "POL-X-1",
            "serial_id": str(new_id),
            "description": "Soporte",
            "registered_on": "2025-02-01",
            "valid_until": "2030-01-31",
        },
    )
    assert resp.status == 200 and alert_text(await resp.text()) == "Policy saved."
    # Editing suspends it; a suspended serial refuses activations.
    edit = await (await client.get(f"/admin/licences?edit={new_id}")).text()
    assert 'value="PG-TEST-000001"' in edit
    resp = await client.post(
        "/admin/licences/serials",
        data={
            **hidden,
            "serial_id": str(new_id),
            "company_id": str(company),
            "serial": "PG-TEST-000001",
            "system": "Portgate API",
            "description": "API anual",
            "valid_until": "2030-01-31",
            "max_machines": "3",
            "max_open_tickets": "1",
            "suspended": "1",
        },
    )
    assert resp.status == 200
    pacifico = await token_as(client, "pacifico")
    resp = await activate(client, pacifico, new_id, "PC", "FP-SUSP-01")
    assert (await api_error(resp))["code"] == "serial_suspended"
    # Customers cannot reach the administration.
    assert (await client.post("/api/v1/licences", json={}, headers=pacifico)).status == 403
