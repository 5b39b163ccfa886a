"""A customer administrator adds and removes the company's extra users, with chosen profiles."""

from __future__ import annotations

import re

from tests.helpdesk_support import ANDINA, company_id, token_as
from tests.helpers import alert_text, api_error, api_login, db_rows, field_errors, get_form, login

NEW_PASSWORD = "Nueva-clave-2026"


async def test_add_a_user_who_sets_a_password_from_the_email_and_signs_in(client, config, smtp):
    await login(client, "andina", language="en", profile="Exportadora Andina S.A.")
    page, hidden = await get_form(client, "/company/users")
    assert "carla@andina.example" in page and "marta@agencia.example" in page  # agente works for Andina too
    resp = await client.post(
        "/company/users",
        data={
            **hidden,
            "full_name": "",
            "username": "x",
            "email": "luis@andina.example",
            "email_confirm": "otro@andina.example",
            "roles": "gate_supervisor",
        },
    )
    assert resp.status == 400
    assert set(field_errors(await resp.text())) == {"full_name", "username", "email_confirm", "roles"}
    resp = await client.post(
        "/company/users",
        data=[
            *hidden.items(),
            ("full_name", "Luis Bodega"),
            ("username", "luis.bodega"),
            ("email", "luis@andina.example"),
            ("email_confirm", "luis@andina.example"),
            ("roles", "customer"),
        ],
    )
    page = await resp.text()
    assert resp.status == 200, page
    assert alert_text(page) == "User luis.bodega added; we e-mailed a link to choose a password."
    assert 'data-username="luis.bodega"' in page
    assert db_rows(
        config,
        "SELECT p.role FROM profiles p JOIN users u ON u.id = p.user_id WHERE u.username = ? AND p.company_id = ?",
        ("luis.bodega", company_id(config, ANDINA)),
    ) == [("customer",)]
    # The same user name or e-mail again is refused at the field.
    resp = await client.post(
        "/company/users",
        data=[
            *hidden.items(),
            ("full_name", "Otro"),
            ("username", "luis.bodega"),
            ("email", "carla@andina.example"),
            ("email_confirm", "carla@andina.example"),
            ("roles", "customer"),
        ],
    )
    assert set(field_errors(await resp.text())) == {"username", "email"}

    mail = smtp.wait_for("luis@andina.example")
    link = re.search(r"https?://\S+/password/set\?token=\S+", mail.get_content())[0]
    path = link[link.index("/password/set") :]
    client.session.cookie_jar.clear()
    _page, hidden = await get_form(client, path)
    token = path.split("token=")[1]
    resp = await client.post(
        "/password/set",
        data={**hidden, "token": token, "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD},
    )
    assert resp.status == 200
    resp = await api_login(client, "luis.bodega", NEW_PASSWORD)
    assert resp.status == 200
    assert [p["company_name"] for p in (await resp.json())["profiles"]] == ["Exportadora Andina S.A."]


async def test_remove_a_user_disables_an_account_left_without_profiles(client, config):
    andina = await token_as(client, "andina", "customer_admin")
    resp = await client.post(
        "/api/v1/company/users",
        json={
            "full_name": "Temporal",
            "username": "temporal",
            "email": "temp@andina.example",
            "email_confirm": "temp@andina.example",
            "roles": ["customer", "customer_admin"],
        },
        headers=andina,
    )
    assert resp.status == 201 and sorted((await resp.json())["roles"]) == ["customer", "customer_admin"]
    user_id = (await resp.json())["id"]
    listed = (await (await client.get("/api/v1/company/users", headers=andina)).json())["users"]
    assert {"temporal", "andina", "agente"} <= {u["username"] for u in listed}
    resp = await client.delete(f"/api/v1/company/users/{user_id}", headers=andina)
    assert resp.status == 200
    assert db_rows(config, "SELECT status FROM users WHERE id = ?", (user_id,)) == [("disabled",)]
    assert db_rows(config, "SELECT COUNT(*) FROM profiles WHERE user_id = ?", (user_id,)) == [(0,)]

    # A user who also works for another company keeps that profile and stays active.
    agente = db_rows(config, "SELECT id FROM users WHERE username = 'agente'")[0][0]
    await login(client, "andina", language="en", profile="Exportadora Andina S.A.")
    _page, hidden = await get_form(client, "/company/users")
    resp = await client.post(f"/company/users/{agente}/remove", data=hidden)
    page = await resp.text()
    assert alert_text(page) == "User agente removed from the company."
    assert 'data-username="agente"' not in page
    assert db_rows(config, "SELECT status FROM users WHERE id = ?", (agente,)) == [("active",)]
    assert db_rows(
        config, "SELECT c.tax_id FROM profiles p JOIN companies c ON c.id = p.company_id WHERE p.user_id = ?", (agente,)
    ) == [("1790012345001",)]

    own = db_rows(config, "SELECT id FROM users WHERE username = 'andina'")[0][0]
    resp = await client.delete(f"/api/v1/company/users/{own}", headers=andina)
    assert (await api_error(resp))["code"] == "own_account"


async def test_only_a_customer_admin_and_only_for_their_own_company(client, config):
    pacifico_user = db_rows(config, "SELECT id FROM users WHERE username = 'pacifico'")[0][0]
    andina = await token_as(client, "andina", "customer_admin")
    assert (await client.delete(f"/api/v1/company/users/{pacifico_user}", headers=andina)).status == 404
    assert db_rows(config, "SELECT status FROM users WHERE id = ?", (pacifico_user,)) == [("active",)]
    plain = await token_as(client, "andina", "customer")
    assert (await client.get("/api/v1/company/users", headers=plain)).status == 403
    resp = await client.post("/api/v1/company/users", json={"roles": ["admin"]}, headers=andina)
    assert resp.status == 400 and "roles" in (await api_error(resp))["fields"]
    await login(client, "pacifico", language="en")
    assert (await client.get("/company/users")).status == 403
