"""Signing in with the company's tax id (seed 001: "RFC o Correo Electrónico"), page and API.

The demo's Exportadora Andina (0991234567001) has two accounts, ``andina`` and ``agente``, both with
the demo password: a sign-in by that tax id and password asks which account, showing them masked, and
never shows anything about them to someone whose password matched none.
"""

from __future__ import annotations

import re

from server.security import hash_password
from tests.helpers import alert_text, api_error, api_human, api_login, bearer, db_rows, get_form, submit

ANDINA = "0991234567001"
CHOICES_RE = re.compile(r'<input type="radio" name="account" value="(\d+)"[^>]*> ([^<]+)</label>')


def _set_password(config, username: str, password: str) -> None:
    db_rows(config, "UPDATE users SET password_hash = ? WHERE username = ?", (hash_password(password), username))


async def _home_user(client) -> str:
    """Who the portal greets after the profile step (the user name in the profile page's heading)."""
    page = await (await client.get("/profiles")).text()
    return page


async def test_tax_id_with_the_password_of_one_account_signs_in_as_it(client, config):
    _set_password(config, "agente", "OtraClave2026x")
    resp = await submit(client, "/login", {"login": ANDINA, "password": "demo2026pass"}, allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/profiles")
    me = db_rows(config, "SELECT u.username FROM sessions s JOIN users u ON u.id = s.user_id")
    assert me == [("andina",)]


async def test_a_tax_id_shared_by_several_accounts_asks_which_one_masked(client, config):
    resp = await submit(client, "/login", {"login": ANDINA.lower(), "password": "demo2026pass"})
    page = await resp.text()
    assert resp.status == 200
    choices = CHOICES_RE.findall(page)
    assert [masked for _i, masked in choices] == ["an**** · c***a@a****a.example", "ag**** · m***a@a*****a.example"]
    for clear in ("andina", "agente", "carla@andina.example", "marta@agencia.example", "Carla", "Marta"):
        assert clear not in page.split("<main", 1)[1]
    assert not db_rows(config, "SELECT 1 FROM sessions")

    hidden = {k: v for k, v in re.findall(r'name="(csrf_token|choice_token|next|language)" value="([^"]*)"', page)}
    chosen = await client.post("/login/choose", data={**hidden, "account": "1"}, allow_redirects=False)
    assert chosen.status == 302
    assert db_rows(config, "SELECT u.username FROM sessions s JOIN users u ON u.id = s.user_id") == [("agente",)]
    # The choice is used up: posting it again is refused.
    again = await client.post("/login/choose", data={**hidden, "account": "0"})
    assert again.status in (401, 403) or "ha expirado" in alert_text(await again.text())


async def test_the_account_can_be_typed_instead_and_must_be_one_of_those_proven(client, config):
    resp = await submit(client, "/login", {"login": ANDINA, "password": "demo2026pass"})
    page = await resp.text()
    hidden = {k: v for k, v in re.findall(r'name="(csrf_token|choice_token|next|language)" value="([^"]*)"', page)}
    outsider = await client.post("/login/choose", data={**hidden, "typed_login": "pacifico"})
    assert outsider.status == 401
    assert alert_text(await outsider.text()) == "Elija una de las cuentas mostradas, o escriba su usuario o correo."
    typed = await client.post("/login/choose", data={**hidden, "typed_login": "ANDINA"}, allow_redirects=False)
    assert typed.status == 302
    assert db_rows(config, "SELECT u.username FROM sessions s JOIN users u ON u.id = s.user_id") == [("andina",)]


async def test_a_wrong_password_by_tax_id_tells_nothing_and_is_throttled(client, config):
    wrong = await submit(client, "/login", {"login": ANDINA, "password": "wrong-password-1"})
    assert wrong.status == 401
    page = await wrong.text()
    assert alert_text(page) == "Usuario o contraseña incorrectos." and not CHOICES_RE.search(page)
    for _ in range(config.security.login_max_failures_per_account - 2):
        await submit(client, "/login", {"login": ANDINA, "password": "wrong-password-1"})
    locked = await submit(client, "/login", {"login": ANDINA, "password": "wrong-password-1"})
    assert locked.status == 429 and "bloqueada" in alert_text(await locked.text())
    # The lock holds for the tax id even with the right password; each account's own name still works.
    still = await submit(client, "/login", {"login": ANDINA, "password": "demo2026pass"})
    assert still.status == 429
    own = await submit(client, "/login", {"login": "andina", "password": "demo2026pass"}, allow_redirects=False)
    assert own.status == 302


async def test_the_human_check_still_guards_a_tax_id_sign_in(client, config):
    robot = await submit(client, "/login", {"login": ANDINA, "password": "demo2026pass"}, human=False)
    assert robot.status == 400 and "no es un robot" in alert_text(await robot.text())
    assert not CHOICES_RE.search(await robot.text())


async def test_the_login_field_says_a_tax_id_is_welcome(client):
    page, _hidden = await get_form(client, "/login")
    assert "Usuario, correo o RUC/RFC" in page


async def test_api_login_by_tax_id_chooses_then_gives_a_token(client, config):
    resp = await api_login(client, ANDINA)
    assert resp.status == 200
    body = await resp.json()
    assert set(body) == {"choice_token", "accounts"}
    assert [a["index"] for a in body["accounts"]] == [0, 1]
    assert "andina" not in str(body["accounts"]) and "agente" not in str(body["accounts"])

    bad = await client.post("/api/v1/auth/login/choose", json={"choice_token": body["choice_token"], "login": "admin"})
    assert bad.status == 400 and (await api_error(bad))["code"] == "not_among_choices"
    chosen = await client.post("/api/v1/auth/login/choose", json={"choice_token": body["choice_token"], "index": 0})
    assert chosen.status == 200
    token = (await chosen.json())["token"]
    me = await (await client.get("/api/v1/me", headers=bearer(token))).json()
    assert me["username"] == "andina"
    reused = await client.post("/api/v1/auth/login/choose", json={"choice_token": body["choice_token"], "index": 0})
    assert reused.status == 400 and (await api_error(reused))["code"] == "choice_expired"


async def test_api_login_by_tax_id_with_a_wrong_password_is_plain_wrong_credentials(client):
    resp = await client.post(
        "/api/v1/auth/login", json={"login": ANDINA, "password": "wrong-password-1", **(await api_human(client))}
    )
    assert resp.status == 401
    error = await api_error(resp)
    assert error["code"] == "wrong_credentials" and error["message"] == "Usuario o contraseña incorrectos."
