"""The kiosk's camera counts a read only when it verifies against the kiosk's cache, yet a forged ticket
still reaches the lane as forged: the real agent application (its camera source on a looping still image,
built by ``gate_agent.runner.build_sources`` as ``portgate-agent run`` builds it) against the real server,
its verdicts read on the lane screen's WebSocket."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
from aiohttp import ClientWebSocketResponse
from aiohttp.test_utils import TestClient, TestServer

from gate_agent.app import create_agent_app
from gate_agent.config import AgentConfig, ScannerConfig
from gate_agent.runner import build_sources
from gate_core.codes import SigningKey, issue_code, parse_code
from server.app import create_app
from tests.agent_app import enrolled
from tests.gate_support import enrol_kiosk, make_tickets
from tests.scanner_fixtures import plain_qr


async def verdicts_for(ws: ClientWebSocketResponse, seconds: float) -> list[dict[str, Any]]:
    """Every verdict the lane screen shows within ``seconds``."""
    deadline, shown = time.monotonic() + seconds, []
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            message = await ws.receive_json(timeout=remaining)
        except TimeoutError:
            break
        if message.get("type") == "verdict":
            shown.append(message)
    return shown


def forgery_of(code: str, ticket_id: int = 999_999) -> str:
    """A forgery: a code for another ticket, signed under the kiosk's key id with another key."""
    genuine = parse_code(code, {})  # its key is unknown here: the key id and nothing trusted
    forger = SigningKey.from_private_bytes(genuine.key_id, bytes(range(1, 33)))
    return issue_code(forger, ticket_id, 42)


async def lane_verdicts(config, aiohttp_client, tmp_path, in_view: Callable[[str], list[str]], seconds: float):
    """The verdicts a kiosk's lane shows while its camera sees the codes ``in_view(ticket's code)`` side by
    side, and the ticket's code."""
    from server.demo import install_demo

    app = create_app(config)
    app.on_startup.append(install_demo)
    server = await aiohttp_client(app)
    kiosk = await enrol_kiosk(server)
    (ticket,) = await make_tickets(app, 1)
    image = tmp_path / "lane.png"
    cv2.imwrite(str(image), np.hstack([plain_qr(code, canvas=(480, 480)) for code in in_view(ticket["code"])]))
    agent_config = AgentConfig(
        server_url=str(server.make_url("")).rstrip("/"),
        data_dir=str(tmp_path / "kiosk"),
        scanners=(ScannerConfig(type="camera", source=str(image), loop=True),),
        dedupe_seconds=60,
    )
    enrolled(agent_config, kiosk["token"])
    agent = create_agent_app(agent_config, build_sources(agent_config))  # as `portgate-agent run` builds it
    async with TestClient(TestServer(agent)) as lane, lane.ws_connect("/ws") as screen:
        return await verdicts_for(screen, seconds), ticket["code"]


def outcomes(verdicts: list[dict[str, Any]]) -> list[tuple[bool, str]]:
    return [(verdict["accepted"], verdict["reason"]) for verdict in verdicts]


async def test_a_genuine_ticket_is_accepted(config, aiohttp_client, tmp_path):
    verdicts, _code = await lane_verdicts(config, aiohttp_client, tmp_path, lambda code: [code], seconds=4)
    assert outcomes(verdicts) == [(True, "accepted")]


async def test_a_forged_ticket_is_refused_as_forged_not_ignored(config, aiohttp_client, tmp_path):
    """It fails the camera's check, but once no verified code has come for it, the kiosk decides it."""
    verdicts, _code = await lane_verdicts(config, aiohttp_client, tmp_path, lambda code: [forgery_of(code)], seconds=4)
    assert outcomes(verdicts) == [(False, "forged")]


async def test_a_forged_code_beside_the_ticket_leaves_the_lane_to_the_ticket(config, aiohttp_client, tmp_path):
    """A frame read whole: only what verifies is reported, so the lane never flashes "forged" for a code
    that is not the driver's ticket (a misread, another system's QR shaped like ours)."""
    verdicts, _code = await lane_verdicts(
        config, aiohttp_client, tmp_path, lambda code: [forgery_of(code), code], seconds=4
    )
    assert outcomes(verdicts) == [(True, "accepted")]
