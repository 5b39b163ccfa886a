"""``/metrics``: off by default, behind its token and address list, and the figures an operator watches move
as redeems, syncs, kiosks and requests go through the real app."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from email.message import EmailMessage

import pytest
from prometheus_client.parser import text_string_to_metric_families

from server import mail_outbox
from server.app import create_app
from server.config import Config, MailConfig, MetricsConfig
from server.metrics import pool_stats
from server.tickets.service import delete_ticket
from server.web import DB
from tests.gate_support import company_id, enrol_kiosk, make_tickets, now, redeem
from tests.helpers import bearer
from tests.mailbox import free_port

TOKEN = "scrape-secret-0123456789"


def with_metrics(config: Config, **settings) -> Config:
    return replace(config, metrics=MetricsConfig(enabled=True, **settings))


@pytest.fixture
async def served(config, aiohttp_client):
    """The real app with metrics on (loopback allowed, as by default) and the demo accounts."""
    from server.demo import install_demo

    app = create_app(with_metrics(config))
    app.on_startup.append(install_demo)
    return await aiohttp_client(app)


async def scrape(client, headers: dict[str, str] | None = None) -> dict[tuple[str, frozenset], float]:
    """Every sample of ``/metrics``, by name and labels, parsed as Prometheus parses it."""
    resp = await client.get("/metrics", headers=headers or {})
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(await resp.text()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_are_off_by_default(client):
    resp = await client.get("/metrics")
    assert resp.status == 404


async def test_a_missing_or_wrong_token_gets_401_and_no_figures(config, aiohttp_client):
    client = await aiohttp_client(create_app(with_metrics(config, token=TOKEN, allow="")))
    for headers in ({}, bearer("not-the-token"), {"Authorization": f"Basic {TOKEN}"}):
        resp = await client.get("/metrics", headers=headers)
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        body = await resp.json()
        assert body["error"]["code"] == "unauthorized" and body["error"]["message"]
        assert "portgate_" not in await resp.text()
    samples = await scrape(client, bearer(TOKEN))
    assert ("portgate_kiosks_connected", frozenset()) in samples


async def test_an_address_outside_the_allow_list_gets_403_even_with_the_token(config, aiohttp_client):
    client = await aiohttp_client(create_app(with_metrics(config, token=TOKEN, allow="10.0.0.0/8, fd00::/8")))
    resp = await client.get("/metrics", headers=bearer(TOKEN))
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "forbidden"


async def test_redeems_are_counted_by_outcome_and_reason_with_their_latency(served):
    app = served.server.app
    kiosk = await enrol_kiosk(served)
    first, second = await make_tickets(app, 2)
    before = await scrape(served)

    assert (await redeem(served, kiosk, first["code"]))["accepted"]
    assert (await redeem(served, kiosk, second["code"]))["accepted"]
    again = await redeem(served, kiosk, first["code"])
    assert again["reason"] == "already_used"
    forged = await redeem(served, kiosk, "PG1-NOT-A-REAL-CODE")
    after = await scrape(served)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("portgate_redeems_total", outcome="accepted", reason="accepted") == 2
    assert moved("portgate_redeems_total", outcome="refused", reason="already_used") == 1
    assert moved("portgate_redeems_total", outcome="refused", reason=forged["reason"]) == 1
    assert moved("portgate_redeem_duration_seconds_count") == 4
    assert 0 < moved("portgate_redeem_duration_seconds_sum") < 4 * 5
    assert value(after, "portgate_redeem_duration_seconds_bucket", le="+Inf") == 4


async def test_sync_pulls_and_their_bytes_are_counted_full_and_delta(served):
    app = served.server.app
    kiosk = await enrol_kiosk(served)
    await make_tickets(app, 5)
    full = await served.get("/api/v1/gate/sync?cursor=0&limit=1000", headers=kiosk["headers"])
    full_bytes = len(await full.read())
    cursor = (await full.json())["cursor"]
    delta = await served.get(f"/api/v1/gate/sync?cursor={cursor}", headers=kiosk["headers"])
    delta_bytes = len(await delta.read())

    samples = await scrape(served)
    assert value(samples, "portgate_sync_pulls_total", kind="full") == 1
    assert value(samples, "portgate_sync_pulls_total", kind="delta") == 1
    # As sent on the wire: the test client asks for gzip, so these are the compressed sizes.
    assert value(samples, "portgate_sync_bytes_total", kind="full") == full.content_length or full_bytes
    assert value(samples, "portgate_sync_bytes_total", kind="delta") == delta.content_length or delta_bytes
    assert value(samples, "portgate_sync_bytes_total", kind="full") > value(
        samples, "portgate_sync_bytes_total", kind="delta"
    )


async def test_kiosks_connected_their_sync_lag_and_pending_uploads(served):
    app = served.server.app
    listening = await enrol_kiosk(served, name="Puerta Norte")
    quiet = await enrol_kiosk(served, name="Puerta Sur")
    tickets = await make_tickets(app, 3)
    cursors = {}
    for kiosk in (listening, quiet):  # both up to date
        cursor = 0
        while True:
            page = await (await served.get(f"/api/v1/gate/sync?cursor={cursor}", headers=kiosk["headers"])).json()
            cursor = cursors[kiosk["kiosk_id"]] = page["cursor"]
            if not page["has_more"]:
                break

    async with served.ws_connect("/api/v1/gate/live", headers=listening["headers"]) as ws:
        await ws.receive_json(timeout=5)  # hello
        await ws.send_json({"pending_uploads": 7})
        pending = {**quiet["headers"], "X-Pending-Uploads": "2"}
        await served.get(f"/api/v1/gate/sync?cursor={cursors[quiet['kiosk_id']]}", headers=pending)
        # A change neither kiosk has pulled yet:
        await app[DB].write(delete_ticket, await company_id(app), tickets[0]["id"], now=now())
        samples = await _eventually(served, lambda s: value(s, "portgate_kiosk_pending_uploads", kiosk="Puerta Norte"))

    assert value(samples, "portgate_kiosks_connected") == 1
    assert value(samples, "portgate_kiosk_pending_uploads", kiosk="Puerta Norte") == 7
    assert value(samples, "portgate_kiosk_pending_uploads", kiosk="Puerta Sur") == 2
    assert value(samples, "portgate_kiosk_sync_lag", kiosk="Puerta Norte") == 1
    assert value(samples, "portgate_kiosk_sync_lag", kiosk="Puerta Sur") == 1
    after = await scrape(served)  # the socket closed
    assert value(after, "portgate_kiosks_connected") == 0


async def _eventually(client, ready, seconds: float = 5.0):
    """Scrape until ``ready(samples)`` is truthy (a live-channel message is read by the server in its time)."""
    deadline = time.monotonic() + seconds
    while True:
        samples = await scrape(client)
        if ready(samples) or time.monotonic() > deadline:
            return samples
        await asyncio.sleep(0.05)


async def test_http_responses_are_counted_by_route_pattern_never_by_raw_path(served):
    for kiosk_id in (101, 102, 103):
        await served.get(f"/gate/kiosks/{kiosk_id}/revoke", allow_redirects=False)
    for path in ("/api/v1/nothing-here", "/nothing/at/all"):
        assert (await served.get(path)).status == 404
    await served.get("/healthz")

    samples = await scrape(served)
    routes = {dict(labels)["route"] for name, labels in samples if name == "portgate_http_responses_total"}
    assert "/gate/kiosks/{id}/revoke" in routes and not any("101" in route for route in routes)
    signed_out = [
        dict(labels)["status"]
        for name, labels in samples
        if name == "portgate_http_responses_total" and dict(labels)["route"] == "/gate/kiosks/{id}/revoke"
    ]
    assert signed_out and all(status.startswith(("3", "4")) for status in signed_out)
    assert value(samples, "portgate_http_responses_total", route="unmatched", method="GET", status="404") == 2
    assert value(samples, "portgate_http_responses_total", route="/healthz", method="GET", status="200") == 1


async def test_the_mail_outbox_size_is_shown(config, aiohttp_client):
    down = replace(config, mail=MailConfig(backend="smtp", host="127.0.0.1", port=free_port()))  # nobody listens
    client = await aiohttp_client(create_app(with_metrics(down)))
    app = client.server.app
    for n in range(3):
        message = EmailMessage()
        message["To"], message["From"], message["Subject"] = f"cliente{n}@example.com", "a@b.c", "Hola"
        message.set_content("Su ticket")
        await app[DB].write(mail_outbox.queue_message, message, time.time())

    samples = await scrape(client)
    waiting = value(samples, "portgate_mail_outbox_messages", status="queued") + value(
        samples, "portgate_mail_outbox_messages", status="failed"
    )
    assert waiting == 3


async def test_the_database_pool_use_is_shown(served):
    engine = served.server.app[DB]
    if pool_stats(engine) is None:
        pytest.skip(f"the {engine.dialect_name} engine reports no pool figures (no pool_stats() yet)")
    await served.get("/healthz")
    samples = await scrape(served)
    assert value(samples, "portgate_db_pool_size") >= 1
    assert 0 <= value(samples, "portgate_db_pool_busy") <= value(samples, "portgate_db_pool_size")
    assert value(samples, "portgate_db_pool_waiting") >= 0
