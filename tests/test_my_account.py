"""My account ("Mi cuenta"): every signed-in person edits their name, e-mail, phone and language, page and API.

Real HTTP on loopback against the real app, a real SQLite file and a real SMTP server.
"""

from __future__ import annotations

import re

from tests.helpers import alert_text, api_error, api_token, bearer, db_rows, field_errors, get_form, login


def _user(config, username: str) -> tuple:
    return db_rows(config, "SELECT full_name, email, phone, language FROM users WHERE username = ?", (username,))[0]


async def test_my_account_page_saves_name_phone_and_language_then_redirects(client, config):
    await login(client, "pacifico")
    page, hidden = await get_form(client, "/account")
    assert "<title>Mi cuenta · Portgate</title>" in page and 'href="/password"' in page
    data = {**hidden, "full_name": "Pedro P. Pacífico", "email": "pedro@pacifico.example", "phone": "+593 98 765 4321"}
    resp = await client.post("/account", data={**data, "language": "en"}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/account"  # Refresh never re-submits
    shown = await (await client.get("/account")).text()
    assert alert_text(shown) == "Your account has been saved."  # now in the chosen language
    assert _user(config, "pacifico") == ("Pedro P. Pacífico", "pedro@pacifico.example", "+593987654321", "en")
    again = await (await client.get("/account")).text()
    assert alert_text(again) == ""  # the message is shown once


async def test_a_new_email_takes_effect_only_from_the_mailed_link(client, config, smtp):
    await login(client, "pacifico")
    _page, hidden = await get_form(client, "/account")
    data = {**hidden, "full_name": "Pedro Pacífico", "email": "pedro@nuevo.example", "phone": "+593990000000"}
    resp = await client.post("/account", data={**data, "language": "es"})
    assert "pedro@nuevo.example" in alert_text(await resp.text())
    assert _user(config, "pacifico")[1] == "pedro@pacifico.example"
    body = smtp.wait_for("pedro@nuevo.example", "confirme su nuevo correo").get_content()
    link = re.search(r"/account/email/confirm\?token=\S+", body)[0]
    done = await client.get(link)
    assert done.status == 200 and "es ahora el correo" in await done.text()
    assert _user(config, "pacifico")[1] == "pedro@nuevo.example"
    assert (await client.get(link)).status == 400  # used up


async def test_bad_fields_are_marked_and_nothing_is_saved(client, config):
    await login(client, "pacifico")
    before = _user(config, "pacifico")
    _page, hidden = await get_form(client, "/account")
    bad = {**hidden, "full_name": "", "email": "carla@andina.example", "phone": "abc", "language": "fr"}
    resp = await client.post("/account", data=bad)
    assert resp.status == 400
    assert set(field_errors(await resp.text())) == {"full_name", "phone", "language"}
    taken = {**bad, "full_name": "Pedro", "phone": "+593990000000", "language": "es"}
    resp = await client.post("/account", data=taken)
    errors = field_errors(await resp.text())
    assert set(errors) == {"email"} and errors["email"].startswith("Ya existe una cuenta")
    assert _user(config, "pacifico") == before


async def test_every_signed_in_person_has_it_in_the_menu(client):
    for user in ("admin", "pacifico", "supervisor"):
        await login(client, user)
        assert 'href="/account"' in await (await client.get("/home")).text()
        _page, hidden = await get_form(client, "/home")
        await client.post("/logout", data=hidden)


async def test_the_api_reads_and_changes_my_account(client, config, smtp):
    token = await api_token(client, "pacifico")
    mine = await (await client.get("/api/v1/account", headers=bearer(token))).json()
    assert mine["account"]["username"] == "pacifico" and mine["account"]["language"] == "es"
    change = {"full_name": "Pedro API", "email": "pedro@api.example", "phone": "0991234567", "language": "en"}
    resp = await client.put("/api/v1/account", json=change, headers=bearer(token))
    assert resp.status == 200
    body = await resp.json()
    assert body["email_confirmation_sent"] is True
    assert body["account"]["full_name"] == "Pedro API" and body["account"]["email"] == "pedro@pacifico.example"
    smtp.wait_for("pedro@api.example", "confirm your new e-mail")

    bad = await client.put("/api/v1/account", json={**change, "language": "de", "email": "x"}, headers=bearer(token))
    assert bad.status == 400 and set((await api_error(bad))["fields"]) == {"language", "email"}
    assert (await client.get("/api/v1/account")).status == 401
