"""Behind a reverse proxy (HAProxy sends X-Forwarded-For): the per-address limits and the metrics allow-list see
each client, not the balancer, and only a trusted proxy's word counts (the real app on a loopback port)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from server.app import create_app
from server.demo import install_demo
from tests.conftest import with_security

DEMO_PASSWORD = "demo2026pass"
OUTSIDE, OTHER = "203.0.113.7", "198.51.100.9"


async def api_login(client, login: str, password: str, forwarded_for: str | None) -> tuple[int, str]:
    """A sign-in through the API, as a client whose proxy says it is ``forwarded_for``: (status, error code)."""
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    challenge = await (await client.get("/api/v1/human-check", headers=headers)).json()
    left, right = challenge["question"].split(" + ")
    body = {"login": login, "password": password, "human_token": challenge["token"]}
    resp = await client.post(
        "/api/v1/auth/login", json={**body, "human_answer": str(int(left) + int(right))}, headers=headers
    )
    answer = await resp.json()
    return resp.status, (answer.get("error") or {}).get("code", "")


async def demo_client(aiohttp_client, config):
    app = create_app(config)
    app.on_startup.append(install_demo)
    return await aiohttp_client(app)


async def test_behind_a_trusted_proxy_one_clients_bad_passwords_do_not_lock_out_the_others(config, aiohttp_client):
    config = with_security(config, trusted_proxies="127.0.0.1/32, ::1/128", login_max_failures_per_address=3)
    client = await demo_client(aiohttp_client, config)
    for name in ("ghost1", "ghost2", "ghost3"):
        assert (await api_login(client, name, "x1234567890", OUTSIDE))[0] == 401
    assert await api_login(client, "andina", DEMO_PASSWORD, OUTSIDE) == (429, "address_throttled")
    # Another client behind the same balancer signs in.
    assert (await api_login(client, "andina", DEMO_PASSWORD, OTHER))[0] == 200
    # A client writing its own X-Forwarded-For is not believed: the proxy appends what it saw, and that counts.
    assert (await api_login(client, "andina", DEMO_PASSWORD, f"{OTHER}, {OUTSIDE}"))[0] == 429


async def test_without_trusted_proxies_a_forwarded_for_header_changes_nothing(config, aiohttp_client):
    client = await demo_client(aiohttp_client, with_security(config, login_max_failures_per_address=3))
    for index, name in enumerate(("ghost1", "ghost2", "ghost3")):
        assert (await api_login(client, name, "x1234567890", f"198.51.100.{index}"))[0] == 401
    assert await api_login(client, "andina", DEMO_PASSWORD, OTHER) == (429, "address_throttled")


async def test_a_forwarded_for_header_from_an_address_that_is_not_a_trusted_proxy_changes_nothing(
    config, aiohttp_client
):
    """A client reaching the node directly (not through the balancer) cannot pick its address by header."""
    config = with_security(config, trusted_proxies="10.0.0.0/8", login_max_failures_per_address=3)
    client = await demo_client(aiohttp_client, config)  # it connects from the loopback, not from 10.x
    for index, name in enumerate(("ghost1", "ghost2", "ghost3")):
        assert (await api_login(client, name, "x1234567890", f"198.51.100.{index}"))[0] == 401
    assert await api_login(client, "andina", DEMO_PASSWORD, OTHER) == (429, "address_throttled")


@pytest.mark.parametrize(("forwarded_for", "status"), [(None, 200), (OUTSIDE, 403), ("not-an-address", 200)])
async def test_metrics_through_a_trusted_proxy_answer_only_the_allowed_addresses(
    config, aiohttp_client, forwarded_for, status
):
    config = with_security(config, trusted_proxies="127.0.0.1/32, ::1/128")
    config = replace(config, metrics=replace(config.metrics, enabled=True, allow="127.0.0.1/32, ::1/128"))
    client = await aiohttp_client(create_app(config))
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    resp = await client.get("/metrics", headers=headers)
    # No usable address in the header: the connection's own (the proxy's) stands.
    assert resp.status == status, await resp.text()
