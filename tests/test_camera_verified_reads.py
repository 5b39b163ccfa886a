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
from gate_core.reasons import advice_text
from server.app import create_app
from server.tickets.pdf import QR_STYLE
from tests.agent_app import enrolled
from tests.gate_support import enrol_kiosk, make_tickets
from tests.scanner_fixtures import glare, on_paper, plain_qr


async def shown_on(ws: ClientWebSocketResponse, seconds: float) -> list[dict[str, Any]]:
    """Every message but the status the lane screen gets within ``seconds``: verdicts, the camera's advice."""
    deadline, shown = time.monotonic() + seconds, []
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            message = await ws.receive_json(timeout=remaining)
        except TimeoutError:
            break
        if message.get("type") != "status":
            shown.append(message)
    return shown


def forgery_of(code: str, ticket_id: int = 999_999) -> str:
    """A forgery: a code for another ticket, signed under the kiosk's key id with another key."""
    genuine = parse_code(code, {})  # its key is unknown here: the key id and nothing trusted
    forger = SigningKey.from_private_bytes(genuine.key_id, bytes(range(1, 33)))
    return issue_code(forger, ticket_id, 42)


async def lane_screen(config, aiohttp_client, tmp_path, picture: Callable[[str], np.ndarray], seconds: float):
    """The verdicts and advice a kiosk's lane screen gets while its camera sees ``picture(ticket's code)``,
    and the ticket's code."""
    from server.demo import install_demo

    app = create_app(config)
    app.on_startup.append(install_demo)
    server = await aiohttp_client(app)
    kiosk = await enrol_kiosk(server)
    (ticket,) = await make_tickets(app, 1)
    image = tmp_path / "lane.png"
    cv2.imwrite(str(image), picture(ticket["code"]))
    agent_config = AgentConfig(
        server_url=str(server.make_url("")).rstrip("/"),
        data_dir=str(tmp_path / "kiosk"),
        scanners=(ScannerConfig(type="camera", source=str(image), loop=True),),
        dedupe_seconds=60,
    )
    enrolled(agent_config, kiosk["token"])
    agent = create_agent_app(agent_config, build_sources(agent_config))  # as `portgate-agent run` builds it
    async with TestClient(TestServer(agent)) as lane, lane.ws_connect("/ws") as screen:
        return await shown_on(screen, seconds), ticket["code"]


async def lane_verdicts(config, aiohttp_client, tmp_path, in_view: Callable[[str], list[str]], seconds: float):
    """The verdicts a kiosk's lane shows while its camera sees the codes ``in_view(ticket's code)`` side by
    side, and the ticket's code."""

    def side_by_side(code: str) -> np.ndarray:
        return np.hstack([plain_qr(text, canvas=(480, 480)) for text in in_view(code)])

    shown, code = await lane_screen(config, aiohttp_client, tmp_path, side_by_side, seconds)
    return [message for message in shown if message["type"] == "verdict"], code


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


async def test_a_ticket_the_camera_sees_under_a_glare_gets_advice_on_the_lane_screen(config, aiohttp_client, tmp_path):
    """Held up under a lamp whose reflection burns out too much of its code, a ticket gets no verdict: the
    screen tells the driver, in the kiosk's language, to tilt it, and keeps telling while it lasts."""

    def under_glare(code: str) -> np.ndarray:
        return glare(on_paper(code, style=QR_STYLE), (330, 230), radius=120)

    shown, _code = await lane_screen(config, aiohttp_client, tmp_path, under_glare, seconds=5)
    assert [message["type"] for message in shown if message["type"] != "advice"] == []  # no verdict
    assert shown, "no advice reached the lane screen"
    assert {(message["advice"], message["source"]) for message in shown} == {("glare", "camera0")}
    assert shown[0]["text"] == advice_text("glare", "es")  # the kiosk's language (Spanish by default)
    assert len(shown) >= 2  # again while the ticket stays unread


async def test_a_ticket_read_at_once_gets_its_verdict_and_no_advice(config, aiohttp_client, tmp_path):
    shown, _code = await lane_screen(
        config, aiohttp_client, tmp_path, lambda code: on_paper(code, style=QR_STYLE), seconds=3
    )
    assert [(message["type"], message.get("reason")) for message in shown] == [("verdict", "accepted")]
