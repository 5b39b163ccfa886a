"""A customer administrator edits the profiles of the company's users (never another company's), and
confirms before removing one."""

from __future__ import annotations

from tests.helpdesk_support import ANDINA, PACIFICO, token_as
from tests.helpers import alert_text, api_error, db_rows, field_errors, get_form, login


def roles_at(config, username: str, tax_id: str) -> list[str]:
    rows = db_rows(
        config,
        "SELECT p.role FROM profiles p JOIN users u ON u.id = p.user_id JOIN companies c ON c.id = p.company_id "
        "WHERE u.username = ? AND c.tax_id = ? ORDER BY p.role",
        (username, tax_id),
    )
    return [r[0] for r in rows]


def user_id(config, username: str) -> int:
    return db_rows(config, "SELECT id FROM users WHERE username = ?", (username,))[0][0]


async def test_the_company_administrator_edits_a_users_profiles_on_the_page(client, config):
    agente = user_id(config, "agente")
    await login(client, "andina", language="en", profile="Exportadora Andina S.A.")
    _page, hidden = await get_form(client, "/company/users")
    resp = await client.post(
        f"/company/users/{agente}/profiles",
        data=[*hidden.items(), ("roles", "customer"), ("roles", "customer_admin")],
        allow_redirects=False,
    )
    assert resp.status == 302
    page = await (await client.get(resp.headers["Location"])).text()
    assert alert_text(page) == "Profiles of agente saved."
    assert roles_at(config, "agente", ANDINA) == ["customer", "customer_admin"]
    assert roles_at(config, "agente", PACIFICO) == ["customer"]  # the other company's profile stays

    resp = await client.post(f"/company/users/{agente}/profiles", data=hidden)
    assert resp.status == 400
    assert field_errors(await resp.text()) == {"roles": "Choose at least one profile."}
    resp = await client.post(f"/company/users/{agente}/profiles", data={**hidden, "roles": "admin"})
    assert field_errors(await resp.text()) == {"roles": "Choose profiles from the list."}
    assert roles_at(config, "agente", ANDINA) == ["customer", "customer_admin"]

    own = user_id(config, "andina")
    resp = await client.post(f"/company/users/{own}/profiles", data={**hidden, "roles": "customer"})
    assert resp.status == 409
    assert "your own administrator profile" in alert_text(await resp.text())
    assert roles_at(config, "andina", ANDINA) == ["customer", "customer_admin"]


async def test_profiles_through_the_api_and_never_for_another_companys_user(client, config):
    andina = await token_as(client, "andina", "customer_admin")
    agente, pacifico = user_id(config, "agente"), user_id(config, "pacifico")
    resp = await client.put(
        f"/api/v1/company/users/{agente}/profiles", json={"roles": ["customer_admin"]}, headers=andina
    )
    assert resp.status == 200 and (await resp.json())["roles"] == ["customer_admin"]
    assert roles_at(config, "agente", ANDINA) == ["customer_admin"]

    resp = await client.put(f"/api/v1/company/users/{pacifico}/profiles", json={"roles": ["customer"]}, headers=andina)
    assert resp.status == 404
    assert roles_at(config, "pacifico", PACIFICO) == ["customer"] and roles_at(config, "pacifico", ANDINA) == []
    resp = await client.put(f"/api/v1/company/users/{agente}/profiles", json={"roles": "customer"}, headers=andina)
    assert resp.status == 400 and (await api_error(resp))["fields"] == {"roles": "Choose at least one profile."}
    plain = await token_as(client, "pacifico")
    resp = await client.put(f"/api/v1/company/users/{agente}/profiles", json={"roles": ["customer"]}, headers=plain)
    assert resp.status == 403


async def test_removing_a_company_user_is_confirmed_first(client, config):
    agente = user_id(config, "agente")
    await login(client, "andina", language="es", profile="Exportadora Andina S.A.")
    page = await (await client.get("/company/users")).text()
    assert f'href="/company/users/{agente}/remove"' in page
    page, hidden = await get_form(client, f"/company/users/{agente}/remove")
    assert "Marta Multi (agente) perderá sus perfiles en Exportadora Andina S.A." in page
    assert roles_at(config, "agente", ANDINA) == ["customer"]  # looking is not removing
    resp = await client.post(f"/company/users/{agente}/remove", data=hidden, allow_redirects=False)
    assert resp.status == 302
    assert (
        alert_text(await (await client.get(resp.headers["Location"])).text()) == "Usuario agente quitado de la empresa."
    )
    assert roles_at(config, "agente", ANDINA) == []
    pacifico = user_id(config, "pacifico")
    assert (await client.get(f"/company/users/{pacifico}/remove")).status == 404
