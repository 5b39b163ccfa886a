"""The accounts portal through real HTTP on loopback, a real SQLite file and a real SMTP server."""

from __future__ import annotations

import re

import pytest

from tests.conftest import with_security
from tests.helpers import (
    alert_text,
    choose_profile,
    count,
    db_rows,
    field_errors,
    get_form,
    hidden_fields,
    login,
    submit,
)
from tests.mailbox import wait_until_delivered

REGISTRATION = {
    "full_name": "Lucía Torres",
    "username": "ltorres",
    "email": "lucia@andina.example",
    "email_confirm": "lucia@andina.example",
    "tax_id": "0991234567001",
    "phone": "+593 99 123 4567",
    "password": "Puerto2026seguro",
    "password_confirm": "Puerto2026seguro",
}


async def test_every_empty_registration_field_is_marked_at_the_field(client, config):
    users_before = count(config, "users")
    resp = await submit(client, "/register", {k: "" for k in REGISTRATION})
    assert resp.status == 400
    errors = field_errors(await resp.text())
    assert set(errors) == set(REGISTRATION)
    assert all(msg == "Este campo es obligatorio." for msg in errors.values())
    assert count(config, "users") == users_before


async def test_unknown_tax_id_gets_the_billing_message_with_contact(client, config):
    resp = await submit(client, "/register", {**REGISTRATION, "tax_id": "0999999999001"})
    assert resp.status == 400
    message = field_errors(await resp.text())["tax_id"]
    assert "no se encuentra registrado en nuestro sistema de facturación" in message
    assert "soporte@terminal.example" in message
    assert not db_rows(config, "SELECT 1 FROM users WHERE username = 'ltorres'")


async def test_registration_success_mail_approval_and_first_login(client, config, smtp):
    resp = await submit(client, "/register", REGISTRATION)
    assert resp.status == 200 and resp.url.path == "/register/done"
    assert "en espera de aprobación" in alert_text(await resp.text())
    mail = smtp.wait_for("lucia@andina.example", "registro recibido")
    assert "24 horas" in mail.get_content() and "Exportadora Andina" in mail.get_content()
    (hash_,) = db_rows(config, "SELECT password_hash FROM users WHERE username = 'ltorres'")[0]
    assert hash_.startswith("$argon2id$") and "Puerto2026seguro" not in hash_

    resp = await submit(client, "/login", {"login": "ltorres", "password": "Puerto2026seguro"})
    assert resp.status == 401 and "espera de aprobación" in alert_text(await resp.text())

    await login(client, "admin")
    page = await (await client.get("/admin/registrations")).text()
    user_id = re.search(r"/admin/registrations/(\d+)/approve", page)[1]
    _page, hidden = await get_form(client, "/admin/registrations")
    resp = await client.post(f"/admin/registrations/{user_id}/approve", data=hidden)
    assert resp.status == 200 and "ltorres" not in await resp.text()
    assert "aprobada" in smtp.wait_for("lucia@andina.example", "aprobada").get_content()
    await client.post("/logout", data=hidden)

    await login(client, "lucia@andina.example", "Puerto2026seguro")  # by e-mail, too
    home = await (await client.get("/home")).text()
    assert "Exportadora Andina S.A." in home and "Cliente" in home


async def test_wrong_credentials_and_failed_human_check_have_distinct_messages(client):
    wrong = await submit(client, "/login", {"login": "andina", "password": "not-the-password1"})
    assert wrong.status == 401
    assert alert_text(await wrong.text()) == "Usuario o contraseña incorrectos."
    robot = await submit(client, "/login", {"login": "andina", "password": "demo2026pass"}, human=False)
    assert robot.status == 400
    assert alert_text(await robot.text()) == "Confirme que no es un robot: la verificación no fue superada."
    missing = await submit(client, "/login", {"login": "", "password": ""})
    assert set(field_errors(await missing.text())) == {"login", "password"}


async def test_human_check_token_cannot_be_replayed(client):
    _page, hidden = await get_form(client, "/login")
    data = {**hidden, "login": "andina", "password": "wrong-password-1"}
    first = await client.post("/login", data=data)
    assert first.status == 401
    second = await client.post("/login", data=data)
    assert second.status == 400 and "robot" in alert_text(await second.text())


async def test_account_locks_after_repeated_failures(client, config):
    for _ in range(config.security.login_max_failures_per_account - 1):
        resp = await submit(client, "/login", {"login": "pacifico", "password": "wrong-password-1"})
        assert resp.status == 401
    resp = await submit(client, "/login", {"login": "pacifico", "password": "wrong-password-1"})
    assert resp.status == 429 and "bloqueada" in alert_text(await resp.text())
    # Even the right password is refused while locked.
    resp = await submit(client, "/login", {"login": "pacifico", "password": "demo2026pass"})
    assert resp.status == 429 and "bloqueada" in alert_text(await resp.text())
    assert db_rows(config, "SELECT COUNT(*) FROM audit_log WHERE event = 'login.locked'")[0][0] == 1


async def test_address_is_throttled_across_accounts(config, aiohttp_client):
    from server.app import create_app
    from server.demo import install_demo

    app = create_app(with_security(config, login_max_failures_per_address=3))
    app.on_startup.append(install_demo)
    client = await aiohttp_client(app)
    for name in ("ghost1", "ghost2", "ghost3"):
        assert (await submit(client, "/login", {"login": name, "password": "x1234567890"})).status == 401
    resp = await submit(client, "/login", {"login": "andina", "password": "demo2026pass"})
    assert resp.status == 429 and "desde su dirección" in alert_text(await resp.text())


async def test_form_without_valid_csrf_token_is_refused_and_writes_nothing(client, config):
    _page, hidden = await get_form(client, "/register")
    users_before = count(config, "users")
    resp = await client.post("/register", data={**REGISTRATION, **hidden, "csrf_token": "forged"})
    assert resp.status == 403
    assert "Recargue la página" in await resp.text()
    assert count(config, "users") == users_before


async def test_sql_metacharacters_are_plain_text(client, config):
    evil = "Robert'); DROP TABLE users;--"
    resp = await submit(client, "/login", {"login": evil, "password": "' OR '1'='1"})
    assert resp.status == 401
    data = {**REGISTRATION, "full_name": evil, "username": "o-brien_1"}
    resp = await submit(client, "/register", data)
    assert resp.status == 200
    assert db_rows(config, "SELECT full_name FROM users WHERE username = 'o-brien_1'") == [(evil,)]
    assert count(config, "users") > 1


async def test_oversized_and_garbage_fields_are_refused_at_the_field(client, config):
    users_before = count(config, "users")
    data = {
        **REGISTRATION,
        "full_name": "x" * 5000,
        "email": "not-an-email",
        "email_confirm": "other@x.example",
        "phone": "call me",
        "username": "a b",
        "tax_id": "<script>",
        "password": "short",
        "password_confirm": "different",
    }
    resp = await submit(client, "/register", data)
    assert resp.status == 400
    page = await resp.text()
    errors = field_errors(page)
    assert errors["full_name"] == "Como máximo 120 caracteres."
    assert errors["email"] == "Ingrese un correo electrónico válido."
    assert errors["phone"].startswith("Ingrese un teléfono válido")
    assert errors["username"].startswith("De 3 a 40")
    assert errors["tax_id"].startswith("Ingrese un RUC/RFC válido")
    assert errors["password"] == "La contraseña debe tener al menos 10 caracteres."
    assert errors["password_confirm"] == "Las contraseñas no coinciden."
    assert "<script>" not in page  # echoed values are escaped
    assert count(config, "users") == users_before


async def test_duplicate_user_name_and_email_are_refused(client):
    resp = await submit(
        client,
        "/register",
        {
            **REGISTRATION,
            "username": "andina",
            "email": "carla@andina.example",
            "email_confirm": "carla@andina.example",
        },
    )
    errors = field_errors(await resp.text())
    assert errors["username"] == "Este usuario ya está en uso."
    assert errors["email"] == "Ya existe una cuenta con este correo electrónico."


async def test_profiles_company_menu_change_password_and_logout(client, config):
    await login(client, "agente")
    page = await (await client.get("/profiles")).text()
    assert "Exportadora Andina S.A." in page and "Importadora del Pacífico" in page
    # Without a chosen profile the portal asks for one.
    resp = await client.get("/home", allow_redirects=False)
    assert resp.headers["Location"] == "/profiles"
    await choose_profile(client, "Importadora del Pacífico Cía. Ltda.")
    home = await (await client.get("/home")).text()
    assert "Importadora del Pacífico Cía. Ltda." in home
    assert 'href="/admin/registrations"' not in home

    await client.post("/logout", data=(await get_form(client, "/home"))[1])
    await login(client, "admin")
    admin_home = await (await client.get("/home")).text()
    assert 'href="/admin/registrations"' in admin_home and 'href="/billing/companies"' in admin_home
    assert 'id="change-password"' in admin_home and 'id="logout"' in admin_home

    resp = await submit(
        client,
        "/password",
        {
            "current_password": "wrong-one-123",
            "new_password": "Nueva2026clave",
            "new_password_confirm": "Nueva2026clave",
        },
    )
    assert field_errors(await resp.text())["current_password"] == "La contraseña actual no es correcta."
    resp = await submit(
        client,
        "/password",
        {
            "current_password": "demo2026pass",
            "new_password": "Nueva2026clave",
            "new_password_confirm": "Nueva2026clave",
        },
    )
    assert "ha sido cambiada" in alert_text(await resp.text())
    _page, hidden = await get_form(client, "/home")
    resp = await client.post("/logout", data=hidden, allow_redirects=False)
    assert resp.headers["Location"] == "/login"
    assert (await client.get("/home", allow_redirects=False)).status == 302
    assert (await submit(client, "/login", {"login": "admin", "password": "demo2026pass"})).status == 401
    await login(client, "admin", "Nueva2026clave")


async def test_staff_pages_are_refused_to_customers(client):
    await login(client, "pacifico")
    resp = await client.get("/admin/registrations")
    assert resp.status == 403
    resp = await client.get("/billing/companies")
    assert resp.status == 403


async def test_language_chosen_at_login_is_remembered(client):
    await login(client, "pacifico", language="en")
    home = await (await client.get("/home")).text()
    assert "Welcome, Pedro Pacífico" in home and 'lang="en"' in home
    _page, hidden = await get_form(client, "/home")
    await client.post("/logout", data=hidden)
    client.session.cookie_jar.clear()
    await login(client, "pacifico")  # the form defaults to Spanish, but the user's choice is kept per cookie
    assert "Bienvenido/a" in await (await client.get("/home")).text()


async def test_existing_customer_registration_by_tax_id(client, smtp, config):
    resp = await submit(client, "/register/customer", {"tax_id": "0991234567001"})
    page = await resp.text()
    assert "l*******a@a****a.example" in page and "j**e@a****a.example" in page
    assert "logistica@andina.example" not in page
    resp = await client.post(
        "/register/customer", data={**hidden_fields(page), "tax_id": "0991234567001", "email_index": "1"}
    )
    assert "j**e@a****a.example" in alert_text(await resp.text())
    link = re.search(r"http://\S+/register/finish\?token=\S+", smtp.wait_for("jefe@andina.example").get_content())[0]
    path = link.split("8080", 1)[1]
    page, hidden = await get_form(client, path)
    token = re.search(r'name="token" value="([^"]+)"', page)[1]
    resp = await client.post(
        "/register/finish",
        data={
            **hidden,
            "token": token,
            "full_name": "Jefe Andina",
            "username": "jefe",
            "password": "Andina2026ok",
            "password_confirm": "Andina2026ok",
        },
    )
    assert "Ya puede ingresar" in alert_text(await resp.text())
    await login(client, "jefe", "Andina2026ok")
    # The link works once.
    assert (await client.get(path)).status == 400


async def test_existing_customer_unknown_tax_id(client):
    resp = await submit(client, "/register/customer", {"tax_id": "0999999999001"})
    assert "soporte@terminal.example" in field_errors(await resp.text())["tax_id"]


async def test_prospect_registration_requires_matching_confirmations(client, smtp, config):
    data = {
        "company_name": "Naviera Nueva",
        "tax_id": "0998887776001",
        "contact": "Nora Nueva",
        "email": "nora@nueva.example",
        "email_confirm": "nora@otra.example",
        "phone": "0991112222",
        "phone_confirm": "0991112223",
    }
    resp = await submit(client, "/register/prospect", data)
    errors = field_errors(await resp.text())
    assert errors == {"email_confirm": "Los correos no coinciden.", "phone_confirm": "Los teléfonos no coinciden."}
    data.update(email_confirm="nora@nueva.example", phone_confirm="0991112222")
    resp = await submit(client, "/register/prospect", data)
    assert resp.url.path == "/register/done"
    body = smtp.wait_for("nora@nueva.example").get_content()
    assert "/password/set?token=" in body and "24 horas" in body
    assert db_rows(config, "SELECT kind, in_registry FROM companies WHERE tax_id = '0998887776001'") == [
        ("prospect", 0)
    ]


async def test_forgotten_password_link(client, smtp, config):
    resp = await submit(client, "/password/forgot", {"email": "pedro@pacifico.example"})
    assert "le hemos enviado un enlace" in alert_text(await resp.text())
    # An unknown address gets the same answer (no account enumeration) and no mail.
    await submit(client, "/password/forgot", {"email": "nobody@nowhere.example"})
    body = smtp.wait_for("pedro@pacifico.example", "restablezca").get_content()
    path = re.search(r"/password/reset\?token=\S+", body)[0]
    page, hidden = await get_form(client, path)
    token = re.search(r'name="token" value="([^"]+)"', page)[1]
    resp = await client.post(
        "/password/reset",
        data={**hidden, "token": token, "new_password": "Oceano2026xyz", "new_password_confirm": "Oceano2026xyz"},
    )
    page = await resp.text()
    assert "guardada" in alert_text(page), page[-1500:]
    await login(client, "pacifico", "Oceano2026xyz")
    await wait_until_delivered(config)  # mail goes out from the outbox: wait for it before saying none went
    assert not smtp.to("nobody@nowhere.example")


async def test_billing_registry_form_and_csv_import(client, config):
    await login(client, "facturacion")
    resp = await submit(client, "/billing/companies", {"tax_id": "", "name": "", "emails": "bad"})
    errors = field_errors(await resp.text())
    assert set(errors) == {"tax_id", "name", "emails"}
    resp = await submit(
        client,
        "/billing/companies",
        {"tax_id": "0912345678001", "name": "Agencia Uno", "emails": "a@uno.example, b@uno.example"},
    )
    assert "Empresa guardada" in alert_text(await resp.text())
    _page, hidden = await get_form(client, "/billing/companies")
    companies_before = count(config, "companies")
    bad_csv = "tax_id,name,emails\n0912345679001,Dos,dos@dos.example\n123,Tres,not-an-email\n"
    resp = await client.post("/billing/companies/import", data={**hidden, "file": _file(bad_csv)})
    alert = alert_text(await resp.text())
    assert resp.status == 400 and "Línea 3" in alert
    assert "Ingrese un RUC/RFC válido" in alert  # the line's problem in the reader's language too
    assert count(config, "companies") == companies_before  # nothing written
    good_csv = (
        "tax_id,name,emails,phone\n0912345679001,Dos,dos@dos.example,\n0912345678001,Agencia Uno SA,a@uno.example,\n"
    )
    resp = await client.post("/billing/companies/import", data={**hidden, "file": _file(good_csv)})
    assert "1 agregadas, 1 actualizadas" in alert_text(await resp.text())
    assert db_rows(config, "SELECT name FROM companies WHERE tax_id = '0912345678001'") == [("Agencia Uno SA",)]


def _file(text: str):
    import io

    from aiohttp import FormData  # noqa: F401 - documents the multipart upload below

    buf = io.BytesIO(text.encode())
    buf.name = "companies.csv"
    return buf


@pytest.mark.parametrize("path", ["/home", "/password", "/admin/registrations", "/billing/companies"])
async def test_pages_need_a_session(client, path):
    resp = await client.get(path, allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/login")


async def test_session_cookie_is_httponly_and_samesite(client):
    resp = await login(client, "andina")
    cookie = resp.cookies["pg_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
