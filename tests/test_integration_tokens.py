"""Integration tokens: an administrator gives a program (the ERP, the bank) a named token bound to one role.

Through real HTTP on loopback against the real app, a real SQLite file: what the administrator sees on
the page, what the program gets from the API with ``Authorization: Bearer``, and what the audit log keeps.
"""

from __future__ import annotations

import re

from tests.helpers import alert_text, api_error, api_token, bearer, count, db_rows, field_errors, get_form, login

TOKEN_RE = re.compile(r'<code id="new-token">(pgi_[^<]+)</code>')


async def _create_on_page(client, name: str = "ERP SAP", role: str = "billing_clerk") -> tuple[str, str]:
    """The administrator fills the form; returns the page they land on and the token it shows."""
    _page, hidden = await get_form(client, "/admin/integrations")
    resp = await client.post("/admin/integrations", data={**hidden, "name": name, "role": role})
    assert resp.status == 200 and resp.url.path == "/admin/integrations", await resp.text()
    page = await resp.text()
    found = TOKEN_RE.search(page)
    assert found, page
    return page, found[1]


async def test_admin_creates_a_token_shown_once_that_acts_with_its_role(client, config):
    await login(client, "admin")
    page, token = await _create_on_page(client)
    assert "no se volverá a mostrar" in alert_text(page)
    # A reload (or Back) never shows it again, and the database keeps only its hash.
    again = await (await client.get("/admin/integrations")).text()
    assert token not in again and "ERP SAP" in again and "Facturación" in again
    stored = db_rows(config, "SELECT token_hash FROM integration_tokens WHERE name = 'ERP SAP'")
    assert stored and token not in stored[0][0]

    me = await client.get("/api/v1/me", headers=bearer(token))
    assert me.status == 200
    assert (await me.json())["profile"]["role"] == "billing_clerk"
    # The role bounds it: an administrator's operation is refused.
    refused = await client.get("/api/v1/integrations", headers=bearer(token))
    assert refused.status == 403 and (await api_error(refused))["code"] == "forbidden"


async def test_every_use_is_in_the_audit_log_with_the_token_method_and_path(client, config):
    await login(client, "admin")
    _page, token = await _create_on_page(client, "Banco conciliación")
    await client.get("/api/v1/me", headers=bearer(token))
    await client.get("/api/v1/integrations", headers=bearer(token))
    uses = db_rows(config, "SELECT detail FROM audit_log WHERE event = 'integration.used' ORDER BY id")
    assert [u[0].split(": ", 1)[1] for u in uses] == ["GET /api/v1/me", "GET /api/v1/integrations"]
    assert all("Banco conciliación" in u[0] for u in uses)
    listed = await (await client.get("/admin/integrations")).text()
    assert "—" not in listed.split("Banco conciliación", 1)[1].split("</tr>", 1)[0]  # "last used" is filled


async def test_revoking_asks_first_then_the_next_request_is_refused(client, config):
    await login(client, "admin")
    _page, token = await _create_on_page(client)
    token_id = db_rows(config, "SELECT id FROM integration_tokens")[0][0]
    listed = await (await client.get("/admin/integrations")).text()
    assert f'href="/admin/integrations/{token_id}/revoke"' in listed  # a link to a question, not a one-click form

    question, hidden = await get_form(client, f"/admin/integrations/{token_id}/revoke")
    assert "¿Revocar el token «ERP SAP»?" in question and "no se puede deshacer" in question
    assert (await client.get("/api/v1/me", headers=bearer(token))).status == 200  # asking revoked nothing

    resp = await client.post(f"/admin/integrations/{token_id}/revoke", data=hidden)
    assert resp.status == 200 and resp.url.path == "/admin/integrations"
    assert "revocado" in alert_text(await resp.text())
    refused = await client.get("/api/v1/me", headers=bearer(token))
    assert refused.status == 401 and (await api_error(refused))["code"] == "unauthorized"
    events = [e for (e,) in db_rows(config, "SELECT event FROM audit_log WHERE event LIKE 'integration.%'")]
    assert events.count("integration.revoked") == 1


async def test_bad_name_or_role_is_marked_at_the_field_and_writes_nothing(client, config):
    await login(client, "admin")
    _page, hidden = await get_form(client, "/admin/integrations")
    resp = await client.post("/admin/integrations", data={**hidden, "name": "", "role": "admin"})
    assert resp.status == 400
    errors = field_errors(await resp.text())
    assert errors == {"name": "Este campo es obligatorio.", "role": "Elija uno de los roles ofrecidos."}
    assert count(config, "integration_tokens") == 0


async def test_the_api_creates_lists_and_revokes_without_ever_listing_the_token(client, config):
    admin = await api_token(client, "admin")
    created = await client.post(
        "/api/v1/integrations", json={"name": "ERP", "role": "billing_clerk"}, headers=bearer(admin)
    )
    assert created.status == 201
    body = await created.json()
    token, token_id = body["token"], body["integration"]["id"]
    assert body["integration"]["created_by"] == "admin" and body["integration"]["last_used_at"] is None

    assert (await client.get("/api/v1/me", headers=bearer(token))).status == 200
    listed = await (await client.get("/api/v1/integrations", headers=bearer(admin))).json()
    assert token not in str(listed) and listed["tokens"][0]["last_used_at"] is not None

    revoked = await client.delete(f"/api/v1/integrations/{token_id}", headers=bearer(admin))
    assert revoked.status == 200 and (await revoked.json())["integration"]["revoked_at"]
    assert (await client.get("/api/v1/me", headers=bearer(token))).status == 401
    twice = await client.delete(f"/api/v1/integrations/{token_id}", headers=bearer(admin))
    assert twice.status == 404

    bad = await client.post("/api/v1/integrations", json={"name": "x" * 81, "role": "root"}, headers=bearer(admin))
    assert bad.status == 400 and set((await api_error(bad))["fields"]) == {"name", "role"}
    assert count(config, "integration_tokens") == 1


async def test_customers_and_other_staff_cannot_manage_tokens(client):
    for user in ("facturacion", "pacifico"):
        token = await api_token(client, user)
        resp = await client.post(
            "/api/v1/integrations", json={"name": "x", "role": "operations"}, headers=bearer(token)
        )
        assert resp.status == 403


async def test_a_token_dies_with_its_creators_account(client, config):
    await login(client, "admin")
    _page, token = await _create_on_page(client)
    db_rows(config, "UPDATE users SET status = 'disabled' WHERE username = 'admin'")
    assert (await client.get("/api/v1/me", headers=bearer(token))).status == 401


async def test_a_token_cannot_change_the_account_it_acts_on(client):
    await login(client, "admin")
    _page, token = await _create_on_page(client)
    resp = await client.post(
        "/api/v1/password",
        json={
            "current_password": "demo2026pass",
            "new_password": "Otra2026clave",
            "new_password_confirm": "Otra2026clave",
        },
        headers=bearer(token),
    )
    assert resp.status == 403 and (await api_error(resp))["code"] == "integration_token"


async def test_error_pages_say_what_happened_in_words_with_a_way_back(client):
    await login(client, "admin")
    missing = await client.get("/admin/integrations/999999/revoke")
    page = await missing.text()
    assert missing.status == 404
    assert "<title>Página no encontrada · Portgate</title>" in page and "<h1>Página no encontrada</h1>" in page
    assert 'href="/home" id="error-home"' in page
    _page, hidden = await get_form(client, "/home")
    await client.post("/logout", data=hidden)
    await login(client, "pacifico")
    refused = await client.get("/admin/integrations")
    assert refused.status == 403 and "<h1>No permitido</h1>" in await refused.text()
