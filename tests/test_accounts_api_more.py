"""The accounts API beyond sign-in: a prospect's registration and a forgotten password (the same rules and
mails as the pages), and what a prospect may see (the vendor portal, not gate tickets).

Real HTTP on loopback, a real SQLite file and a real SMTP server.
"""

from __future__ import annotations

import re

from tests.helpers import api_error, api_human, api_token, bearer, count, db_rows, get_form, login, submit

PROSPECT = {
    "company_name": "Naviera Nueva",
    "tax_id": "0998887776001",
    "contact": "Nora Nueva",
    "email": "nora@nueva.example",
    "email_confirm": "nora@nueva.example",
    "phone": "0991112222",
    "phone_confirm": "0991112222",
}
NEW_PASSWORD = "Naviera2026clave"


async def _register_prospect(client, **changes):
    return await client.post("/api/v1/registration/prospect", json={**PROSPECT, **changes, **(await api_human(client))})


async def _prospect_signed_in(client, smtp, config) -> str:
    """A prospect registered through the API, who chose a password by the mailed link and was approved."""
    assert (await _register_prospect(client)).status == 201
    body = smtp.wait_for("nora@nueva.example", "registro recibido").get_content()
    path = re.search(r"/password/set\?token=\S+", body)[0]
    page, hidden = await get_form(client, path)
    token = re.search(r'name="token" value="([^"]+)"', page)[1]
    passwords = {"new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD}
    await client.post("/password/set", data={**hidden, "token": token, **passwords})
    # The administrator's approval (its page and API belong to user administration).
    db_rows(config, "UPDATE users SET status = 'active' WHERE email = 'nora@nueva.example'")
    return await api_token(client, "nora@nueva.example", NEW_PASSWORD)


async def test_a_prospect_registers_through_the_api_with_the_pages_rules_and_mail(client, smtp, config):
    resp = await _register_prospect(client)
    assert resp.status == 201
    created = await resp.json()
    assert created["username"] == "nora@nueva.example" and created["status"] == "pending"
    mail = smtp.wait_for("nora@nueva.example", "registro recibido").get_content()
    assert "nora@nueva.example" in mail and "/password/set?token=" in mail and "24 horas" in mail
    assert db_rows(config, "SELECT kind, in_registry FROM companies WHERE tax_id = ?", (PROSPECT["tax_id"],)) == [
        ("prospect", 0)
    ]
    again = await _register_prospect(client)
    assert again.status == 400
    assert set((await api_error(again))["fields"]) == {"tax_id", "email"}


async def test_bad_prospect_fields_are_named_and_nothing_is_written(client, config):
    companies, users = count(config, "companies"), count(config, "users")
    resp = await _register_prospect(client, email_confirm="otra@nueva.example", phone="x", company_name="")
    assert resp.status == 400
    error = await api_error(resp)
    assert set(error["fields"]) == {"company_name", "phone", "email_confirm", "phone_confirm"}
    assert error["fields"]["company_name"] == "Este campo es obligatorio."
    assert error["fields"]["email_confirm"] == "Los correos no coinciden."
    robot = await client.post("/api/v1/registration/prospect", json=PROSPECT)
    assert robot.status == 400 and (await api_error(robot))["code"] == "human_check_failed"
    assert (count(config, "companies"), count(config, "users")) == (companies, users)


async def test_forgot_password_through_the_api_mails_the_same_link_and_tells_no_one_who_exists(client, smtp):
    known = await client.post(
        "/api/v1/password/forgot", json={"email": "pedro@pacifico.example", **(await api_human(client))}
    )
    unknown = await client.post(
        "/api/v1/password/forgot", json={"email": "nadie@ninguno.example", **(await api_human(client))}
    )
    assert known.status == unknown.status == 202
    assert await known.json() == await unknown.json()
    assert "le hemos enviado un enlace" in (await known.json())["message"]
    body = smtp.wait_for("pedro@pacifico.example", "restablezca").get_content()
    assert "/password/reset?token=" in body
    assert not smtp.to("nadie@ninguno.example")

    bad = await client.post("/api/v1/password/forgot", json={"email": "no-es-correo", **(await api_human(client))})
    assert bad.status == 400 and set((await api_error(bad))["fields"]) == {"email"}
    robot = await client.post("/api/v1/password/forgot", json={"email": "pedro@pacifico.example"})
    assert robot.status == 400 and (await api_error(robot))["code"] == "human_check_failed"


async def test_a_prospect_gets_no_gate_tickets_page_api_or_menu_entry(client, smtp, config):
    token = await _prospect_signed_in(client, smtp, config)
    me = await (await client.get("/api/v1/me", headers=bearer(token))).json()
    assert me["profile"]["role"] == "prospect"
    refused = await client.get("/api/v1/tickets/balance", headers=bearer(token))
    assert refused.status == 403 and (await api_error(refused))["code"] == "forbidden"

    await login(client, "nora@nueva.example", NEW_PASSWORD)
    home = await (await client.get("/home")).text()
    assert 'href="/tickets"' not in home
    assert (await client.get("/tickets")).status == 403
    # What the vendor portal gives prospects, they have: the helpdesk, licences and policies.
    for path in ("/helpdesk/tickets", "/licences", "/policies"):
        assert f'href="{path}"' in home, path
        assert (await client.get(path)).status == 200, path
    assert (await client.get("/api/v1/helpdesk/tickets", headers=bearer(token))).status == 200


async def test_a_prospect_the_billing_registry_takes_in_becomes_a_customer(client, smtp, config):
    await _prospect_signed_in(client, smtp, config)
    await login(client, "facturacion")
    fields = {"tax_id": PROSPECT["tax_id"], "name": "Naviera Nueva S.A.", "emails": "nora@nueva.example"}
    await submit(client, "/billing/companies", fields)
    token = await api_token(client, "nora@nueva.example", NEW_PASSWORD)
    me = await (await client.get("/api/v1/me", headers=bearer(token))).json()
    assert me["profile"]["role"] == "customer"
    assert (await client.get("/api/v1/tickets/balance", headers=bearer(token))).status == 200
