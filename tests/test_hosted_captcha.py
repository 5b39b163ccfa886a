"""The hosted-captcha verifier against a fake ``siteverify`` service on loopback.

No hosted captcha is reachable from here (nor from a port LAN), so a small aiohttp app plays the
provider: it answers by the response token it receives, the way reCAPTCHA/hCaptcha/Turnstile do.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web

from server.app import create_app
from server.demo import DEMO_PASSWORD, install_demo
from server.human_check import HostedCaptcha
from tests.conftest import with_security
from tests.helpers import alert_text, api_error, get_form
from tests.mailbox import free_port

SECRET = "provider-secret"


class FakeSiteverify:
    """Answers like a provider: ``success`` for the token "good", and misbehaves on request."""

    def __init__(self) -> None:
        self.received: list[dict[str, str]] = []

    async def siteverify(self, request: web.Request) -> web.StreamResponse:
        form = dict(await request.post())
        self.received.append(form)
        token = form.get("response", "")
        if form.get("secret") != SECRET:
            return web.json_response({"success": False, "error-codes": ["invalid-input-secret"]})
        if token == "slow":
            await asyncio.sleep(3)
        if token == "garbage":
            return web.Response(text="<html>maintenance</html>", content_type="text/html")
        if token == "not-an-object":
            return web.json_response([True])
        if token == "string-true":
            return web.json_response({"success": "true"})
        if token == "server-error":
            return web.json_response({"success": True}, status=500)
        return web.json_response({"success": token in ("good", "slow")})


@pytest.fixture
async def provider(aiohttp_server):
    fake = FakeSiteverify()
    app = web.Application()
    app.router.add_post("/siteverify", fake.siteverify)
    server = await aiohttp_server(app)
    fake.url = str(server.make_url("/siteverify"))
    return fake


@pytest.fixture
async def verifier(provider):
    async with aiohttp.ClientSession() as session:
        yield HostedCaptcha(provider.url, SECRET, "site-key", session, timeout=0.5)


async def test_success_true_from_the_provider_passes(verifier, provider):
    assert await verifier.verify({"captcha_response": "good"}, "192.0.2.7") is True
    assert provider.received == [{"secret": SECRET, "response": "good", "remoteip": "192.0.2.7"}]


@pytest.mark.parametrize("field", ["g-recaptcha-response", "h-captcha-response", "cf-turnstile-response"])
async def test_every_widgets_own_field_name_is_read(verifier, field):
    assert await verifier.verify({field: "good"}, "192.0.2.7") is True


@pytest.mark.parametrize("token", ["bad", "garbage", "not-an-object", "string-true", "server-error", "slow"], ids=str)
async def test_anything_but_a_clear_success_fails(verifier, token):
    assert await verifier.verify({"captcha_response": token}, "192.0.2.7") is False


async def test_missing_or_huge_response_is_not_even_sent(verifier, provider):
    assert await verifier.verify({}, "192.0.2.7") is False
    assert await verifier.verify({"captcha_response": "x" * 5000}, "192.0.2.7") is False
    assert provider.received == []


async def test_provider_unreachable_fails_closed():
    async with aiohttp.ClientSession() as session:
        down = HostedCaptcha(f"http://127.0.0.1:{free_port()}/siteverify", SECRET, "k", session, timeout=0.5)
        assert await down.verify({"captcha_response": "good"}, "192.0.2.7") is False


async def test_wrong_secret_fails(provider):
    async with aiohttp.ClientSession() as session:
        wrong = HostedCaptcha(provider.url, "not-the-secret", "k", session, timeout=0.5)
        assert await wrong.verify({"captcha_response": "good"}, "192.0.2.7") is False


@pytest.fixture
async def hosted_client(config, provider, aiohttp_client):
    hosted = with_security(
        config,
        human_check="hosted",
        hosted_captcha_url=provider.url,
        hosted_captcha_secret=SECRET,
        hosted_captcha_site_key="site-key-123",
        hosted_captcha_script="https://captcha.example/api.js",
    )
    app = create_app(hosted)
    app.on_startup.append(install_demo)
    return await aiohttp_client(app)


async def test_portal_shows_the_widget_instead_of_the_sum(hosted_client):
    resp = await hosted_client.get("/login")
    page = await resp.text()
    assert 'data-sitekey="site-key-123"' in page
    assert '<script src="https://captcha.example/api.js" async defer></script>' in page
    assert "data-question" not in page and 'name="human_answer"' not in page
    # The page's security policy lets the provider's script and frame load, and nothing else.
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self' https://captcha.example;" in csp
    assert "frame-src 'self' https://captcha.example;" in csp


async def test_login_passes_when_the_provider_says_success(hosted_client, provider):
    _page, hidden = await get_form(hosted_client, "/login")
    form = {**hidden, "login": "pacifico", "password": DEMO_PASSWORD, "language": "es"}

    refused = await hosted_client.post("/login", data={**form, "g-recaptcha-response": "bad"})
    assert refused.status == 400
    assert alert_text(await refused.text()) == "Confirme que no es un robot: la verificación no fue superada."

    resp = await hosted_client.post("/login", data={**form, "g-recaptcha-response": "good"}, allow_redirects=False)
    assert resp.status == 302
    home = await (await hosted_client.get("/home")).text()
    assert "Importadora del Pacífico" in home
    assert [r["response"] for r in provider.received] == ["bad", "good"]
    assert provider.received[-1]["remoteip"] == "127.0.0.1"


async def test_api_login_with_the_hosted_check(hosted_client):
    challenge = await (await hosted_client.get("/api/v1/human-check")).json()
    assert challenge["kind"] == "hosted" and challenge["site_key"] == "site-key-123"
    body = {"login": "pacifico", "password": DEMO_PASSWORD}
    refused = await hosted_client.post("/api/v1/auth/login", json={**body, "captcha_response": "garbage"})
    assert (await api_error(refused))["code"] == "human_check_failed"
    resp = await hosted_client.post("/api/v1/auth/login", json={**body, "captcha_response": "good"})
    assert resp.status == 200 and (await resp.json())["token"]
