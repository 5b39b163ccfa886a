"""The licence administration's policy form names its serial by number, whichever page of the list it is on."""

from __future__ import annotations

from tests.helpdesk_support import PACIFICO
from tests.helpers import alert_text, count, db_rows, field_errors, get_form, login
from tests.test_licences_admin_picker import LIMITS, SERIAL

POLICY = {"description": "Soporte anual", "registered_on": "2026-01-01", "valid_until": "2027-01-01"}


async def add_serials(client, hidden: dict[str, str], how_many: int) -> None:
    """``how_many`` serials PG-PAGE-000000… for the demo's Pacífico, through the admin's serial form."""
    for n in range(how_many):
        data = {**hidden, "company": PACIFICO, "serial": f"PG-PAGE-{n:06d}", **SERIAL, **LIMITS}
        resp = await client.post("/admin/licences/serials", data=data)
        assert resp.status == 200, await resp.text()


async def test_a_serial_beyond_the_first_page_gets_a_policy_by_its_number(client, config):
    await login(client, "admin", language="en")
    _page, hidden = await get_form(client, "/admin/licences")
    await add_serials(client, hidden, 55)
    page, hidden = await get_form(client, "/admin/licences")
    # The oldest of them is past the first page of the list, yet the form takes its number typed in.
    assert "PG-PAGE-000000" not in page and 'id="f-policy-serial" name="serial"' in page
    # Typing offers it: the form's type-ahead search finds it though it is on no page shown.
    assert 'data-type-ahead="/admin/licences/serial-choices"' in page and "/static/type_ahead.js" in page
    offered = await (await client.get("/admin/licences/serial-choices?q=PG-PAGE-000000")).json()
    assert [c["value"] for c in offered["choices"]] == ["PG-PAGE-000000"]
    resp = await client.post(
        "/admin/licences/policies", data={**hidden, "number": "POL-PAGE-1", "serial": "pg-page-000000", **POLICY}
    )
    assert resp.status == 200 and alert_text(await resp.text()) == "Policy saved."
    on = "SELECT s.serial FROM policies p JOIN serials s ON s.id = p.serial_id WHERE p.number = ?"
    assert db_rows(config, on, ("POL-PAGE-1",)) == [("PG-PAGE-000000",)]


async def test_an_unknown_serial_number_is_refused_at_the_field_and_nothing_is_written(client, config):
    await login(client, "admin")
    _page, hidden = await get_form(client, "/admin/licences")
    before = count(config, "policies")
    resp = await client.post(
        "/admin/licences/policies", data={**hidden, "number": "POL-NONE-1", "serial": "PG-NONE-000001", **POLICY}
    )
    assert resp.status == 400
    page = await resp.text()
    assert field_errors(page)["serial"] == "No existe este número de serie."
    assert 'value="PG-NONE-000001"' in page  # the typed number stays in the field to be corrected
    assert count(config, "policies") == before
    resp = await client.post(
        "/admin/licences/policies", data={**hidden, "number": "POL-NONE-2", "serial": "", **POLICY}
    )
    assert resp.status == 400 and "serial" in field_errors(await resp.text())
    assert count(config, "policies") == before
    # Only the licence admin gets the type-ahead's answer.
    await client.post("/logout", data=hidden)
    await login(client, "operaciones")
    assert (await client.get("/admin/licences/serial-choices?q=PG")).status == 403
