"""Bodies the parsers cannot read get a clear 4xx, never a 500; nothing is written or renamed."""

from __future__ import annotations

import io
from datetime import date, timedelta

from tests.helpdesk_support import ANDINA, company_id, new_serial, serial_id, token_as
from tests.helpers import api_error, count, db_rows, get_form, login


async def test_json_with_an_unknown_charset_is_a_400(client):
    resp = await client.post(
        "/api/v1/auth/login",
        data=b'{"login": "admin", "password": "x"}',
        headers={"Content-Type": "application/json; charset=nope"},
    )
    assert resp.status == 400
    assert (await api_error(resp))["code"] == "invalid_json"


async def test_unreadable_multipart_to_the_helpdesk_api_is_a_400(client, config):
    andina = await token_as(client, "andina", "customer")
    tickets_before = count(config, "service_tickets")
    bodies = {
        "multipart/form-data": b"abc",  # no boundary
        "multipart/form-data; boundary=X": (
            b'--X\r\nContent-Disposition: form-data; name="body"\r\n\r\n\xff\xfe\r\n--X--\r\n'
        ),
    }
    for content_type, body in bodies.items():
        resp = await client.post(
            "/api/v1/helpdesk/tickets", data=body, headers={**andina, "Content-Type": content_type}
        )
        assert resp.status == 400, (content_type, resp.status, await resp.text())
        assert (await api_error(resp))["code"] == "bad_request"
    assert count(config, "service_tickets") == tickets_before


async def test_an_unreadable_form_page_post_is_a_400_once_the_csrf_token_matches(client):
    await login(client, "andina")
    _page, hidden = await get_form(client, "/helpdesk/tickets/new")
    for token in ("wrong-token", hidden["csrf_token"]):
        resp = await client.post(
            "/helpdesk/tickets/new",
            data=b"abc",
            headers={"Content-Type": "multipart/form-data", "X-CSRF-Token": token},
        )
        assert resp.status == (403 if token == "wrong-token" else 400), await resp.text()


async def test_a_broken_csv_is_refused_with_its_line_and_nothing_is_imported(client, config):
    await login(client, "facturacion")
    _page, hidden = await get_form(client, "/billing/companies")
    companies_before = count(config, "companies")
    broken = 'tax_id,name,emails\n0991234567001,"unterminated,a@b.example\n' + "x" * 200_000 + "\n"
    upload = io.BytesIO(broken.encode())
    upload.name = "companies.csv"
    resp = await client.post("/billing/companies/import", data={**hidden, "file": upload})
    assert resp.status == 400
    assert "CSV" in await resp.text()
    assert count(config, "companies") == companies_before


async def test_updating_a_serial_without_its_serial_field_keeps_the_serial(client, config):
    admin = await token_as(client, "admin")
    made = await new_serial(client, admin, config, ANDINA)
    before = db_rows(config, "SELECT serial FROM serials WHERE id = ?", (made["id"],))[0][0]
    body = {
        "company_id": company_id(config, ANDINA),
        "system": "Renamed System",
        "description": "Changed description",
        "valid_until": (date.today() + timedelta(days=50)).isoformat(),
        "max_machines": 3,
        "max_open_tickets": 2,
    }
    resp = await client.put(f"/api/v1/licences/{made['id']}", json=body, headers=admin)
    assert resp.status == 200, await resp.text()
    assert db_rows(config, "SELECT serial, description FROM serials WHERE id = ?", (made["id"],)) == [
        (before, "Changed description")
    ]
    assert serial_id(config, before) == made["id"]
