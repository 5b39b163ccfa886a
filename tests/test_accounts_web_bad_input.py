"""Portal pages under odd input a browser, a proxy or an attacker may send: a clear 4xx, never a 500."""

from __future__ import annotations

import pytest

from tests.helpers import alert_text, count, get_form, login, submit

ROBOT = "Confirme que no es un robot: la verificación no fue superada."


@pytest.mark.parametrize("token", ["é", "\u00b2" * 10, "x" * 500])
async def test_odd_csrf_tokens_are_refused_not_a_crash(client, config, token):
    _page, hidden = await get_form(client, "/register")
    users_before = count(config, "users")
    resp = await client.post("/register", data={**hidden, "csrf_token": token, "full_name": "x"})
    assert resp.status == 403
    assert "Recargue la página" in await resp.text()
    resp = await client.post("/login", data={"login": "andina"}, headers={"X-CSRF-Token": token})
    assert resp.status == 403
    assert count(config, "users") == users_before


@pytest.mark.parametrize(
    "human",
    [
        {"human_answer": "²"},
        {"human_answer": "١٢"},  # Arabic-Indic digits
        {"human_token": "².x.y"},
        {"human_token": "9999999999.nonce.é"},
    ],
    ids=["superscript", "arabic-digits", "superscript-expiry", "non-ascii-signature"],
)
async def test_odd_human_check_answers_fail_the_check(client, human):
    resp = await submit(client, "/login", {"login": "andina", "password": "demo2026pass", **human})
    assert resp.status == 400
    assert alert_text(await resp.text()) == ROBOT


async def test_ids_too_big_for_the_database_are_simply_not_found(client):
    await login(client, "admin")
    _page, hidden = await get_form(client, "/admin/registrations")
    resp = await client.post(f"/admin/registrations/{10**30}/approve", data=hidden)
    assert resp.status == 404
    assert "ya fue resuelto o no existe" in await resp.text()
    resp = await client.post("/profiles", data={**hidden, "profile_id": "9" * 30})
    assert resp.status == 400
    assert alert_text(await resp.text()) == "Elija uno de sus perfiles."


@pytest.mark.parametrize(
    "target",
    ["//evil.example", "/\\evil.example", "/\t/evil.example", "/\n/evil.example", "https://evil.example/"],
    ids=["scheme-relative", "backslash", "tab", "newline", "absolute"],
)
async def test_next_never_leaves_the_site(client, target):
    resp = await client.get("/lang/en", params={"next": target}, allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/home"
    resp = await submit(
        client, "/login", {"login": "pacifico", "password": "demo2026pass", "next": target}, allow_redirects=False
    )
    assert resp.status == 302 and resp.headers["Location"] == "/profiles?next=/home"


async def test_unknown_page_says_so_in_the_visitors_language(client):
    resp = await client.get("/no-such-page")
    assert resp.status == 404
    assert "No encontrado." in await resp.text()
