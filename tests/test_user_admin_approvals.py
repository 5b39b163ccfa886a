"""Approving a registration chooses the account's profiles and may mail a note; rejecting is confirmed first."""

from __future__ import annotations

from tests.helpdesk_support import ANDINA, PACIFICO, TERMINAL, company_id, token_as
from tests.helpers import alert_text, api_error, api_human, api_login, db_rows, field_errors, get_form, login

PASSWORD = "Puerto2026seguro"


async def register(client, username: str, email: str) -> int:
    """A person registers for Andina through the API, as the mobile app does; returns the pending user's id."""
    body = {
        "full_name": f"Persona {username}",
        "username": username,
        "email": email,
        "email_confirm": email,
        "tax_id": ANDINA,
        "phone": "+593991112233",
        "password": PASSWORD,
        "password_confirm": PASSWORD,
        **(await api_human(client)),
    }
    resp = await client.post("/api/v1/registration", json=body)
    assert resp.status == 201, await resp.text()
    return (await resp.json())["user_id"]


def profiles(config, user_id: int) -> set[tuple[str, str]]:
    rows = db_rows(
        config,
        "SELECT c.tax_id, p.role FROM profiles p JOIN companies c ON c.id = p.company_id WHERE p.user_id = ?",
        (user_id,),
    )
    return set(rows)


async def test_approving_through_the_api_chooses_profiles_at_several_companies_and_mails_the_note(client, config, smtp):
    pending = await register(client, "rosa", "rosa@andina.example")
    admin = await token_as(client, "admin")
    listed = (await (await client.get("/api/v1/admin/registrations", headers=admin)).json())["registrations"]
    assert [(r["username"], r["tax_id"]) for r in listed] == [("rosa", ANDINA)]

    url = f"/api/v1/admin/registrations/{pending}/approve"
    andina, pacifico = company_id(config, ANDINA), company_id(config, PACIFICO)
    for bad in (
        {"profiles": []},
        {"profiles": [{"company_id": andina, "role": "gate_supervisor"}]},
        {"profiles": [{"company_id": "x"}]},
        {"profiles": "customer"},
        {"profiles": [{"company_id": company_id(config, TERMINAL), "role": "customer"}]},
        {"note": "n" * 1001},
    ):
        resp = await client.post(url, json=bad, headers=admin)
        assert resp.status == 400, (bad, await resp.text())
        assert set((await api_error(resp))["fields"]) <= {"profiles", "note"}
    assert db_rows(config, "SELECT status FROM users WHERE id = ?", (pending,)) == [("pending",)]
    assert profiles(config, pending) == {(ANDINA, "customer")}  # nothing half-written

    chosen = [{"company_id": andina, "role": "customer_admin"}, {"company_id": pacifico, "role": "customer"}]
    resp = await client.post(
        url, json={"profiles": chosen, "note": "Bienvenida, Rosa.\nLa bodega 3 es suya."}, headers=admin
    )
    assert resp.status == 200 and (await resp.json())["status"] == "active"
    assert profiles(config, pending) == {(ANDINA, "customer_admin"), (PACIFICO, "customer")}
    mail = smtp.wait_for("rosa@andina.example", "aprobada").get_content().replace("\r\n", "\n")
    assert "Una nota de la terminal:\nBienvenida, Rosa.\nLa bodega 3 es suya." in mail
    resp = await api_login(client, "rosa", PASSWORD)
    assert {p["role"] for p in (await resp.json())["profiles"]} == {"customer_admin", "customer"}

    resp = await client.post(url, json={}, headers=admin)
    assert resp.status == 404  # already decided


async def test_the_approval_page_needs_a_profile_ticked_and_rejecting_is_confirmed_with_a_note(client, config, smtp):
    first = await register(client, "ines", "ines@andina.example")
    second = await register(client, "teo", "teo@andina.example")
    await login(client, "admin", language="en")
    page, hidden = await get_form(client, "/admin/registrations")
    assert "<title>Registrations · Portgate</title>" in page
    form = {**hidden, "company_id": str(company_id(config, ANDINA)), "choose_profiles": "1", "note": "Hola"}
    resp = await client.post(f"/admin/registrations/{first}/approve", data=form)
    assert resp.status == 400
    assert field_errors(await resp.text()) == {"profiles": "Choose at least one profile."}
    assert db_rows(config, "SELECT status FROM users WHERE id = ?", (first,)) == [("pending",)]
    resp = await client.post(
        f"/admin/registrations/{first}/approve",
        data=[*form.items(), ("roles", "customer"), ("roles", "customer_admin")],
        allow_redirects=False,
    )
    assert resp.status == 302 and resp.headers["Location"] == "/admin/registrations?done=approved"
    page = await (await client.get(resp.headers["Location"])).text()
    assert alert_text(page) == "Registration approved; we e-mailed the user."
    assert profiles(config, first) == {(ANDINA, "customer"), (ANDINA, "customer_admin")}

    # Rejecting is a link to a page that says what will happen; the post comes from there.
    assert f'href="/admin/registrations/{second}/reject"' in page
    page, hidden = await get_form(client, f"/admin/registrations/{second}/reject")
    assert "Persona teo (teo, Exportadora Andina S.A.) will not be able to sign in" in page
    resp = await client.post(f"/admin/registrations/{second}/reject", data={**hidden, "note": "Falta el contrato."})
    assert alert_text(await resp.text()) == "Registration rejected; we e-mailed the user."
    assert db_rows(config, "SELECT status FROM users WHERE id = ?", (second,)) == [("rejected",)]
    mail = smtp.wait_for("teo@andina.example", "no fue aprobado").get_content()
    assert "Falta el contrato." in mail


async def test_a_prospect_is_approved_as_a_prospect_on_the_page(client, config):
    body = {
        "company_name": "Naviera Futura S.A.",
        "tax_id": "0992222222001",
        "contact": "Diego Futuro",
        "email": "diego@futura.example",
        "email_confirm": "diego@futura.example",
        "phone": "+593992223344",
        "phone_confirm": "+593992223344",
        **(await api_human(client)),
    }
    resp = await client.post("/api/v1/registration/prospect", json=body)
    assert resp.status == 201, await resp.text()
    (prospect,) = db_rows(config, "SELECT id FROM users WHERE email = 'diego@futura.example'")[0]
    await login(client, "admin", language="en")
    page, hidden = await get_form(client, "/admin/registrations")
    # The one profile a prospect's company can hold is offered, ticked; no customer profile (gate tickets).
    row = page[page.index(f'action="/admin/registrations/{prospect}/approve"') :].split("</form>")[0]
    assert 'value="prospect" checked' in row and 'value="customer"' not in row
    company = db_rows(config, "SELECT id FROM companies WHERE tax_id = '0992222222001'")[0][0]
    form = [*hidden.items(), ("company_id", str(company)), ("choose_profiles", "1"), ("roles", "customer")]
    resp = await client.post(f"/admin/registrations/{prospect}/approve", data=form)
    assert field_errors(await resp.text()) == {"profiles": "Customer profiles are held only at customer companies."}
    resp = await client.post(f"/admin/registrations/{prospect}/approve", data=[*form[:-1], ("roles", "prospect")])
    assert alert_text(await resp.text()) == "Registration approved; we e-mailed the user."
    assert profiles(config, prospect) == {("0992222222001", "prospect")}
