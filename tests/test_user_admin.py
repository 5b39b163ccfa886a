"""The administrator manages users: a searchable paged list, new staff and customer users, profiles at
several companies, disabling (sessions and tokens die at once) and password-reset links."""

from __future__ import annotations

import re

from tests.helpdesk_support import ANDINA, PACIFICO, TERMINAL, company_id, token_as
from tests.helpers import (
    alert_text,
    api_error,
    api_login,
    count,
    db_rows,
    field_errors,
    get_form,
    login,
)

NEW_PASSWORD = "Nueva-clave-2026"


def user_id(config, username: str) -> int:
    return db_rows(config, "SELECT id FROM users WHERE username = ?", (username,))[0][0]


async def listed(client, admin, **query) -> dict:
    resp = await client.get("/api/v1/admin/users", params=query, headers=admin)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_the_list_searches_filters_and_pages_without_repeating_a_user_when_others_are_added(client, config):
    admin = await token_as(client, "admin")
    assert [u["username"] for u in (await listed(client, admin, q="ANDINA.example"))["users"]] == ["andina"]
    staff = await listed(client, admin, company_id=company_id(config, TERMINAL))
    assert {u["username"] for u in staff["users"]} == {"admin", "facturacion", "operaciones", "supervisor", "mesa"}
    both = await listed(client, admin, role="customer", company_id=company_id(config, PACIFICO))
    assert {u["username"] for u in both["users"]} == {"pacifico", "agente"}
    assert (await listed(client, admin, status="disabled"))["users"] == []

    first = await listed(client, admin, limit=3)
    assert [u["full_name"] for u in first["users"]] == ["Ana Admin", "Bruno Billing", "Carla Andina"]
    # A user whose name sorts onto the first page is added while the administrator reads on.
    resp = await client.post(
        "/api/v1/admin/users",
        json={
            "full_name": "Aaron Nuevo",
            "username": "aaron",
            "email": "aaron@terminal.example",
            "email_confirm": "aaron@terminal.example",
            "company_id": company_id(config, TERMINAL),
            "roles": ["operations"],
        },
        headers=admin,
    )
    assert resp.status == 201, await resp.text()
    seen = [u["username"] for u in first["users"]]
    after = first["next_after"]
    while after:
        page = await listed(client, admin, limit=3, after=after)
        seen += [u["username"] for u in page["users"]]
        after = page["next_after"]
    assert sorted(seen) == sorted(
        ["admin", "facturacion", "operaciones", "supervisor", "mesa", "andina"] + ["pacifico", "agente"]
    )

    resp = await client.get("/api/v1/admin/users", params={"status": "asleep", "limit": "0"}, headers=admin)
    assert resp.status == 400 and set((await api_error(resp))["fields"]) == {"status", "limit"}


async def test_only_the_administrator_reaches_user_administration(client, config):
    for login_name in ("facturacion", "andina"):
        headers = await token_as(client, login_name, "customer_admin" if login_name == "andina" else None)
        assert (await client.get("/api/v1/admin/users", headers=headers)).status == 403
        resp = await client.post(f"/api/v1/admin/users/{user_id(config, 'pacifico')}/disable", headers=headers)
        assert resp.status == 403
    assert db_rows(config, "SELECT status FROM users WHERE username = 'pacifico'") == [("active",)]
    await login(client, "andina", language="en", profile="Exportadora Andina S.A.")
    assert (await client.get("/admin/users")).status == 403


async def test_a_new_staff_user_is_refused_field_by_field_then_created_and_sets_a_password(client, config, smtp):
    await login(client, "admin", language="en")
    page, hidden = await get_form(client, "/admin/users/new")
    assert "<title>Create a user · Portgate</title>" in page
    # Staff profiles are held at the operator: its tax id is already filled in.
    assert re.search(r'name="company_tax_id"[^>]*value="0990000001001"', page), page
    users_before = count(config, "users")
    bad = {
        **hidden,
        "full_name": "Laura Garita",
        "username": "laura",
        "email": "laura@terminal.example",
        "email_confirm": "laura@terminal.example",
        "company_tax_id": ANDINA,  # a customer company cannot hold a staff profile
        "roles": "gate_supervisor",
    }
    resp = await client.post("/admin/users/new", data=bad)
    assert resp.status == 400
    assert field_errors(await resp.text()) == {
        "roles": "Staff profiles are held only at the terminal operator's company."
    }
    resp = await client.post("/admin/users/new", data={**bad, "company_tax_id": "9999999999999"})
    assert field_errors(await resp.text())["company_tax_id"] == "No company has this tax id in the billing registry."
    resp = await client.post("/admin/users/new", data={**bad, "roles": "superuser"})
    assert field_errors(await resp.text()) == {"roles": "Choose profiles from the list."}
    resp = await client.post("/admin/users/new", data={**bad, "company_tax_id": TERMINAL, "username": "MESA"})
    assert field_errors(await resp.text()) == {"username": "This user name is taken."}
    assert count(config, "users") == users_before  # nothing half-written

    resp = await client.post("/admin/users/new", data={**bad, "company_tax_id": TERMINAL}, allow_redirects=False)
    assert resp.status == 302
    new_id = user_id(config, "laura")
    assert resp.headers["Location"] == f"/admin/users/{new_id}?done=created"
    page = await (await client.get(resp.headers["Location"])).text()
    assert alert_text(page) == "User created; we e-mailed them a link to choose a password."
    assert "<title>Laura Garita · Users · Portgate</title>" in page

    mail = smtp.wait_for("laura@terminal.example")
    # A company name ending in "S.A." reads as one sentence, not "S.A.. Your user name".
    assert ", of Terminal Portuaria Demo S.A., created" in mail.get_content() and ".." not in mail.get_content()
    path = re.search(r"/password/set\?token=\S+", mail.get_content())[0]
    client.session.cookie_jar.clear()
    _page, hidden = await get_form(client, path)
    token = path.split("token=")[1]
    resp = await client.post(
        "/password/set",
        data={**hidden, "token": token, "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD},
    )
    assert resp.status == 200
    resp = await api_login(client, "laura", NEW_PASSWORD)
    assert [p["role"] for p in (await resp.json())["profiles"]] == ["gate_supervisor"]


async def test_a_disabled_users_sessions_and_tokens_die_at_once_and_enabling_lets_them_back(client, config):
    victim = await token_as(client, "pacifico")
    await login(client, "pacifico")
    assert (await client.get("/home", allow_redirects=False)).status == 200
    admin = await token_as(client, "admin")
    pacifico = user_id(config, "pacifico")

    resp = await client.post(f"/api/v1/admin/users/{pacifico}/disable", headers=admin)
    assert resp.status == 200 and (await resp.json())["status"] == "disabled"
    assert (await client.get("/api/v1/me", headers=victim)).status == 401
    home = await client.get("/home", allow_redirects=False)
    assert home.status == 302 and home.headers["Location"].startswith("/login")
    resp = await api_login(client, "pacifico")
    assert resp.status == 403 and (await api_error(resp))["code"] == "rejected"

    resp = await client.post(f"/api/v1/admin/users/{pacifico}/disable", headers=admin)
    assert resp.status == 409 and (await api_error(resp))["code"] == "wrong_status"
    resp = await client.post(f"/api/v1/admin/users/{pacifico}/enable", headers=admin)
    assert resp.status == 200 and (await resp.json())["status"] == "active"
    assert (await api_login(client, "pacifico")).status == 200
    # The token taken before the account was disabled stays dead.
    assert (await client.get("/api/v1/me", headers=victim)).status == 401


async def test_disabling_is_confirmed_first_and_redirects_with_the_result(client, config):
    mesa = user_id(config, "mesa")
    await login(client, "admin", language="es")
    page = await (await client.get(f"/admin/users/{mesa}")).text()
    assert f'href="/admin/users/{mesa}/disable"' in page
    assert db_rows(config, "SELECT status FROM users WHERE id = ?", (mesa,)) == [("active",)]  # a link, not a post
    page, hidden = await get_form(client, f"/admin/users/{mesa}/disable")
    assert "Helena Helpdesk (mesa) cerrará sesión en todas partes" in page
    resp = await client.post(f"/admin/users/{mesa}/disable", data=hidden, allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == f"/admin/users/{mesa}?done=disabled"
    page = await (await client.get(resp.headers["Location"])).text()
    assert "Usuario deshabilitado" in alert_text(page)
    assert db_rows(config, "SELECT status FROM users WHERE id = ?", (mesa,)) == [("disabled",)]


async def test_an_administrator_keeps_their_own_account_and_last_administrator_profile(client, config):
    admin = await token_as(client, "admin")
    me = user_id(config, "admin")
    resp = await client.post(f"/api/v1/admin/users/{me}/disable", headers=admin)
    error = await api_error(resp)
    assert resp.status == 409 and error["code"] == "own_account"
    assert error["message"] == "You cannot disable your own account: another administrator must do it."
    (profile,) = db_rows(config, "SELECT id FROM profiles WHERE user_id = ?", (me,))
    resp = await client.delete(f"/api/v1/admin/users/{me}/profiles/{profile[0]}", headers=admin)
    assert resp.status == 409 and (await api_error(resp))["code"] == "own_last_admin"
    assert db_rows(config, "SELECT role FROM profiles WHERE user_id = ?", (me,)) == [("admin",)]

    await login(client, "admin", language="en")
    _page, hidden = await get_form(client, f"/admin/users/{me}")
    resp = await client.post(f"/admin/users/{me}/profiles/{profile[0]}/revoke", data=hidden)
    assert resp.status == 409
    assert "your last administrator profile" in alert_text(await resp.text())


async def test_profiles_are_granted_at_several_companies_and_revoked(client, config):
    admin = await token_as(client, "admin")
    pacifico = user_id(config, "pacifico")
    andina = company_id(config, ANDINA)
    url = f"/api/v1/admin/users/{pacifico}/profiles"
    resp = await client.post(url, json={"company_id": andina, "role": "admin"}, headers=admin)
    assert resp.status == 400 and "role" in (await api_error(resp))["fields"]
    resp = await client.post(url, json={"company_id": 10**12, "role": "customer"}, headers=admin)
    assert resp.status == 400 and "company_id" in (await api_error(resp))["fields"]
    resp = await client.post(url, json={"company_id": "andina", "role": ["customer"]}, headers=admin)
    assert resp.status == 400 and set((await api_error(resp))["fields"]) == {"company_id", "role"}
    resp = await client.post(url, json={"company_id": andina, "role": "customer_admin"}, headers=admin)
    assert resp.status == 201
    held = {(p["company_name"], p["role"]) for p in (await resp.json())["profiles"]}
    assert held == {("Importadora del Pacífico Cía. Ltda.", "customer"), ("Exportadora Andina S.A.", "customer_admin")}
    resp = await client.post(url, json={"company_id": andina, "role": "customer_admin"}, headers=admin)
    assert (await api_error(resp))["fields"]["role"] == "The user already has this profile at this company."

    profiles = (await (await client.get(f"/api/v1/admin/users/{pacifico}", headers=admin)).json())["profiles"]
    granted = next(p["id"] for p in profiles if p["role"] == "customer_admin")
    await login(client, "admin", language="en")
    page, hidden = await get_form(client, f"/admin/users/{pacifico}/profiles/{granted}/revoke")
    assert "Pedro Pacífico will no longer act as Customer administrator at Exportadora Andina S.A." in page
    resp = await client.post(f"/admin/users/{pacifico}/profiles/{granted}/revoke", data=hidden)
    assert alert_text(await resp.text()) == "Profile taken away."
    assert db_rows(config, "SELECT role FROM profiles WHERE user_id = ?", (pacifico,)) == [("customer",)]


async def test_the_administrator_sends_the_existing_reset_link(client, config, smtp):
    facturacion = user_id(config, "facturacion")
    await login(client, "admin", language="en")
    _page, hidden = await get_form(client, f"/admin/users/{facturacion}")
    resp = await client.post(f"/admin/users/{facturacion}/password-reset", data=hidden)
    assert alert_text(await resp.text()) == "We e-mailed the user a link to choose a new password."
    mail = smtp.wait_for("billing@terminal.example")
    path = re.search(r"/password/reset\?token=\S+", mail.get_content())[0]
    client.session.cookie_jar.clear()
    _page, hidden = await get_form(client, path)
    resp = await client.post(
        "/password/reset",
        data={
            **hidden,
            "token": path.split("token=")[1],
            "new_password": NEW_PASSWORD,
            "new_password_confirm": NEW_PASSWORD,
        },
    )
    assert resp.status == 200
    assert (await api_login(client, "facturacion", NEW_PASSWORD)).status == 200
