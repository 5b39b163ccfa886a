"""Security headers on every answer, cookies that stay on HTTPS, a CSRF token bound to its session,
a human check that allows one guess, and sign-in answers that do not tell which user names exist."""

from __future__ import annotations

import io

import pytest

from server.app import create_app
from server.demo import install_demo
from tests.conftest import with_security
from tests.helpers import alert_text, get_form, login, submit

ROBOT = "Confirme que no es un robot: la verificación no fue superada."


def assert_security_headers(resp) -> None:
    headers = resp.headers
    where = f"{resp.method} {resp.url.path} → {resp.status}"
    assert headers.get("X-Content-Type-Options") == "nosniff", where
    assert headers.get("X-Frame-Options") == "DENY", where
    assert headers.get("Referrer-Policy") == "same-origin", where
    assert "frame-ancestors 'none'" in headers.get("Content-Security-Policy", ""), where


async def test_every_kind_of_answer_carries_the_security_headers(client):
    answers = [
        await client.get("/no-such-page"),  # 404 page
        await client.get("/api/v1/no-such-thing"),  # 404 JSON
        await client.get("/api/v1/me"),  # 401 JSON
        await client.post("/api/v1/me"),  # 405
        await client.get("/", allow_redirects=False),  # redirect
        await client.get("/static/portal.css"),  # static file
        await client.get("/password/reset?token=nope"),  # 400 page
        await client.post("/register", data={"csrf_token": "forged"}),  # the CSRF refusal
        await client.post("/api/v1/auth/login", data=io.BytesIO(b"x" * (31 * 1024 * 1024))),  # 413
    ]
    await login(client, "andina", profile="Exportadora Andina S.A.")
    answers.append(await client.get("/admin/registrations"))  # 403 page
    assert [r.status for r in answers] == [404, 404, 401, 405, 302, 200, 400, 403, 413, 403]
    for resp in answers:
        assert_security_headers(resp)


@pytest.fixture
async def secure_client(config, aiohttp_client):
    app = create_app(with_security(config, cookie_secure=True))
    app.on_startup.append(install_demo)
    return await aiohttp_client(app)


async def test_the_language_cookie_is_https_only_when_secure_cookies_are_configured(secure_client):
    resp = await secure_client.get("/lang/en", allow_redirects=False)
    assert resp.cookies["pg_lang"]["secure"]
    # The test client speaks plain HTTP, so its jar keeps the Secure CSRF cookie to itself: sent by hand.
    _page, hidden = await get_form(secure_client, "/login")
    resp = await secure_client.post(
        "/login",
        data={**hidden, "login": "andina", "password": "demo2026pass"},
        headers={"Cookie": f"pg_csrf={hidden['csrf_token']}"},
        allow_redirects=False,
    )
    assert resp.status == 302
    assert resp.cookies["pg_lang"]["secure"] and resp.cookies["pg_session"]["secure"]


async def test_a_csrf_token_from_one_session_is_refused_in_another(client):
    await login(client, "andina", profile="Exportadora Andina S.A.")
    _page, first_session = await get_form(client, "/password")
    await client.post("/logout", data=first_session)
    await login(client, "pacifico")
    _page, second_session = await get_form(client, "/password")
    assert second_session["csrf_token"] != first_session["csrf_token"]
    stale = {**first_session, "current_password": "demo2026pass", "new_password": "x", "new_password_confirm": "x"}
    resp = await client.post("/password", data=stale)
    assert resp.status == 403
    assert "Recargue la página" in await resp.text()
    resp = await client.post("/logout", data=first_session, allow_redirects=False)
    assert resp.status == 403  # still signed in
    resp = await client.post("/logout", data=second_session, allow_redirects=False)
    assert resp.status == 302


async def test_a_wrong_human_check_answer_uses_the_question_up(client):
    _page, hidden = await get_form(client, "/login")
    right = hidden["human_answer"]
    credentials = {**hidden, "login": "andina", "password": "demo2026pass"}
    resp = await client.post("/login", data={**credentials, "human_answer": str(int(right) + 1)})
    assert resp.status == 400 and alert_text(await resp.text()) == ROBOT
    resp = await client.post("/login", data={**credentials, "human_answer": right}, allow_redirects=False)
    assert resp.status == 400 and alert_text(await resp.text()) == ROBOT


@pytest.fixture
async def lenient_address_client(config, aiohttp_client):
    """Only the per-account limit applies (the per-address one would stop the probe first)."""
    app = create_app(with_security(config, login_max_failures_per_address=1000))
    app.on_startup.append(install_demo)
    return await aiohttp_client(app)


async def test_a_locked_account_and_an_unknown_name_get_the_same_answer(lenient_address_client):
    client = lenient_address_client

    async def answers_for(name: str) -> list[tuple[int, str]]:
        answers = []
        for _ in range(7):
            resp = await submit(client, "/login", {"login": name, "password": "wrong-pass-9"})
            answers.append((resp.status, alert_text(await resp.text())))
        return answers

    existing, unknown = await answers_for("andina"), await answers_for("nadie.registrado")
    assert existing == unknown
    assert existing[-1][0] == 429 and "bloqueada" in existing[-1][1]
    # A name typed in other capitals is the same name, as for accounts.
    resp = await submit(client, "/login", {"login": "NADIE.Registrado", "password": "wrong-pass-9"})
    assert (resp.status, alert_text(await resp.text())) == existing[-1]
