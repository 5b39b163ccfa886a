"""The kiosk's own metrics on 127.0.0.1: frames and decodes from a real camera source (a looping image of a
ticket's QR), the verdict latency, the outbox and the link to the server, from the real agent application
against the real server app."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import cv2
from prometheus_client.parser import text_string_to_metric_families

from gate_agent.config import AgentConfig, ScannerConfig
from gate_agent.runner import build_sources
from gate_core.codes import SigningKey, issue_code, new_short_code
from server.app import create_app
from server.tickets.pdf import QR_STYLE
from tests.agent_app import started_agent
from tests.gate_support import enrol_kiosk, make_tickets
from tests.mailbox import free_port
from tests.scanner_fixtures import glare, on_paper, plain_qr


async def agent_scrape(port: int) -> dict[tuple[str, frozenset], float]:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape_until(port: int, ready, seconds: float = 20.0) -> dict[tuple[str, frozenset], float]:
    deadline = time.monotonic() + seconds
    while True:
        samples = await agent_scrape(port)
        if ready(samples) or time.monotonic() > deadline:
            return samples
        await asyncio.sleep(0.1)


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def camera_config(tmp_path, server_url: str, code: str, picture=plain_qr, **settings) -> AgentConfig:
    """A kiosk whose camera sees one ticket's QR code (as ``picture`` draws it), frame after frame (a looping
    still image)."""
    image = tmp_path / "ticket.png"
    cv2.imwrite(str(image), picture(code))
    camera = ScannerConfig(type="camera", source=str(image), loop=True)
    return AgentConfig(
        server_url=server_url, data_dir=str(tmp_path / "kiosk"), scanners=(camera,), dedupe_seconds=60, **settings
    )


async def test_a_kiosk_online_counts_frames_decodes_and_its_online_verdict(config, aiohttp_client, tmp_path):
    from server.demo import install_demo

    app = create_app(config)
    app.on_startup.append(install_demo)
    server = await aiohttp_client(app)
    kiosk = await enrol_kiosk(server)
    (ticket,) = await make_tickets(app, 1)
    port = free_port()
    agent_config = camera_config(tmp_path, str(server.make_url("")).rstrip("/"), ticket["code"], metrics_port=port)

    async with started_agent(agent_config, kiosk["token"], sources=build_sources(agent_config)):
        samples = await scrape_until(port, lambda s: value(s, "portgate_agent_verdict_seconds_count", mode="online"))

    assert value(samples, "portgate_agent_verdict_seconds_count", mode="online") == 1  # one ticket, deduplicated
    assert 0 < value(samples, "portgate_agent_verdict_seconds_sum", mode="online") < 5
    assert value(samples, "portgate_agent_frames_captured_total", source="camera0") >= 1
    assert value(samples, "portgate_agent_frames_decoded_total", source="camera0") >= 1
    assert value(samples, "portgate_agent_codes_found_total", source="camera0") >= 1
    assert value(samples, "portgate_agent_reads_total", source="camera0") >= 1
    assert value(samples, "portgate_agent_online") == 1
    assert value(samples, "portgate_agent_outbox_pending") == 0  # the server's verdict settled it
    assert value(samples, "portgate_agent_tickets") >= 1


async def test_a_kiosk_cut_off_from_the_server_shows_the_link_down_and_its_outbox_growing(tmp_path):
    nobody = f"http://127.0.0.1:{free_port()}"
    port = free_port()
    # A ticket's 20-digit code (well formed: the camera counts it) that this kiosk knows nothing of.
    agent_config = camera_config(tmp_path, nobody, new_short_code(), metrics_port=port)

    async with started_agent(agent_config, "pgk_token", sources=build_sources(agent_config)):
        samples = await scrape_until(port, lambda s: value(s, "portgate_agent_verdict_seconds_count", mode="offline"))

    assert value(samples, "portgate_agent_online") == 0
    assert value(samples, "portgate_agent_verdict_seconds_count", mode="offline") == 1
    assert value(samples, "portgate_agent_outbox_pending") == 1


async def test_a_lane_whose_camera_cannot_read_a_ticket_under_a_glare_counts_its_advice(tmp_path):
    port = free_port()

    def under_glare(code: str):
        return glare(on_paper(code, style=QR_STYLE), (330, 230), radius=120)

    nobody = f"http://127.0.0.1:{free_port()}"  # the advice needs no server
    a_ticket = issue_code(SigningKey.from_private_bytes(1, bytes(range(32))), 5, 1)  # a full code: never read here
    agent_config = camera_config(tmp_path, nobody, a_ticket, picture=under_glare, metrics_port=port)
    async with started_agent(agent_config, "pgk_token", sources=build_sources(agent_config)):
        # The advice needs the ticket in view for a second, frames at most a second apart: on a box busy with other
        # tests a frame can take longer than that to decode (12 frames in 20 s on a clean-clone run), so wait
        # out the busy spell.
        samples = await scrape_until(
            port, lambda s: value(s, "portgate_agent_advice_total", source="camera0", advice="glare"), seconds=60
        )

    assert value(samples, "portgate_agent_advice_total", source="camera0", advice="glare") >= 1
    assert value(samples, "portgate_agent_advice_total", source="camera0", advice="unclear") == 0
    assert value(samples, "portgate_agent_reads_total", source="camera0") == 0
