"""Values a database cannot store (a NUL, half of a character, a number past 64 bits) are refused where
they enter, naming the field, on both engines: never a 500 (PostgreSQL refuses them where SQLite stored
them), never silently changed, nothing written."""

from __future__ import annotations

import io

import pytest

from tests.helpers import alert_text, api_error, api_human, api_token, bearer, count, db_rows, get_form, login, submit

NUL, HALF = "\x00", "\ud800"
REFUSED_EN = "This text holds an invalid character (a NUL or half of a character); remove it."
REFUSED_ES = "Este texto contiene un carácter no válido (un NUL o medio carácter); quítelo."


@pytest.mark.parametrize("bad", [NUL, HALF], ids=["nul", "lone-surrogate"])
async def test_an_api_login_holding_an_unstorable_character_is_a_400_naming_it(client, bad):
    body = {"login": f"and{bad}ina", "password": "demo2026pass", **(await api_human(client))}
    resp = await client.post("/api/v1/auth/login", json=body, headers={"Accept-Language": "en"})
    assert resp.status == 400, await resp.text()
    error = await api_error(resp)
    assert error["code"] == "invalid" and error["fields"] == {"login": REFUSED_EN}


async def test_a_json_field_is_refused_not_stored_without_its_bad_character(client, config):
    """Before, a lone surrogate in a JSON text was dropped and the rest saved: the caller never knew."""
    token = await api_token(client, "andina")
    before = db_rows(config, "SELECT full_name FROM users WHERE username = 'andina'")
    account = (await (await client.get("/api/v1/account", headers=bearer(token))).json())["account"]
    body = {**account, "full_name": f"Carla{HALF} Vera"}
    resp = await client.put("/api/v1/account", json=body, headers=bearer(token))
    assert resp.status == 400, await resp.text()
    assert set((await api_error(resp))["fields"]) == {"full_name"}
    assert db_rows(config, "SELECT full_name FROM users WHERE username = 'andina'") == before


@pytest.mark.parametrize("path", ["/api/v1/itineraries", "/api/v1/helpdesk/tickets", "/api/v1/licences"])
async def test_a_nul_in_an_api_search_is_a_400_naming_the_parameter(client, path):
    token = await api_token(client, "admin")
    resp = await client.get(path, params={"q": f"x{NUL}"}, headers={**bearer(token), "Accept-Language": "en"})
    assert resp.status == 400, await resp.text()
    assert (await api_error(resp))["fields"] == {"q": REFUSED_EN}


async def test_a_json_number_beyond_64_bits_is_a_400_naming_it(client, config):
    token = await api_token(client, "supervisor")
    kiosks = count(config, "kiosks")
    body = {"name": "Garita 9", "gate": "Garita 9", "itineraries": [2**64]}
    resp = await client.post("/api/v1/kiosks", json=body, headers={**bearer(token), "Accept-Language": "en"})
    assert resp.status == 400, await resp.text()
    assert (await api_error(resp))["fields"] == {"itineraries": f"Enter a number from {-(2**63)} to {2**63 - 1}."}
    assert count(config, "kiosks") == kiosks


async def test_a_nul_in_the_login_form_is_a_400_page_naming_the_field(client):
    resp = await submit(client, "/login", {"login": f"and{NUL}ina", "password": "demo2026pass", "language": "es"})
    page = await resp.text()
    assert resp.status == 400, page
    assert f"login: {REFUSED_ES}" in page


async def test_a_nul_in_a_page_search_is_a_400_page_naming_the_parameter(client):
    await login(client, "andina", profile="Exportadora Andina S.A.")
    resp = await client.get("/tickets/itineraries", params={"itinerary_q": f"x{NUL}"})
    page = await resp.text()
    assert resp.status == 400, page
    assert f"itinerary_q: {REFUSED_ES}" in page


async def test_a_form_field_with_a_nul_changes_nothing_and_names_the_field(client, config):
    await login(client, "andina", profile="Exportadora Andina S.A.")
    before = db_rows(config, "SELECT full_name, email, phone FROM users WHERE username = 'andina'")
    resp = await submit(client, "/account", {"full_name": f"Carla{NUL} Vera", "email": "", "phone": ""})
    page = await resp.text()
    assert resp.status == 400, page
    assert f"full_name: {REFUSED_ES}" in page
    assert db_rows(config, "SELECT full_name, email, phone FROM users WHERE username = 'andina'") == before


async def test_a_csv_cell_with_a_nul_is_refused_with_its_line_and_column(client, config):
    await login(client, "facturacion")
    _page, hidden = await get_form(client, "/billing/companies")
    companies = count(config, "companies")
    text = "tax_id,name,emails\n0912345679001,Dos,dos@dos.example\n0912345679002,Tr\x00es,tres@tres.example\n"
    upload = io.BytesIO(text.encode())
    upload.name = "companies.csv"
    resp = await client.post("/billing/companies/import", data={**hidden, "file": upload})
    alert = alert_text(await resp.text())
    assert resp.status == 400, alert
    assert f"Línea 3: name: {REFUSED_ES}" in alert
    assert count(config, "companies") == companies
