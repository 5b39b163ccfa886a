"""The agent as one application: what it owns is started and stopped with it, and the lane screen
follows what the kiosk holds.

The server is the stand-in of ``test_agent_bad_server_data`` (its answers set by each test); the
agent is the real application from ``gate_agent.app.create_agent_app``, its screen read over the
same WebSocket the lane page uses.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from aiohttp import ClientWebSocketResponse
from aiohttp.test_utils import TestClient, TestServer

from gate_agent.app import create_agent_app
from gate_agent.config import AgentConfig
from tests import test_agent_bad_server_data as bad_server
from tests.agent_app import enrolled
from tests.test_agent_bad_server_data import good_page

stand_in = bad_server.stand_in  # the fixture: a kiosk-protocol server whose answers each test sets


async def screen_status(
    ws: ClientWebSocketResponse, wanted: Callable[[dict[str, Any]], bool], timeout: float = 10.0
) -> dict[str, Any]:
    """The first status message on the lane screen that is ``wanted``."""
    deadline, last = time.monotonic() + timeout, None
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            message = await ws.receive_json(timeout=remaining)
        except TimeoutError:
            break
        if message.get("type") == "status":
            last = message
            if wanted(message):
                return message
    raise AssertionError(f"the screen never showed the wanted status; last {last}")


async def test_the_lane_screen_counts_the_tickets_a_live_push_brings(stand_in, tmp_path):
    """A ticket generated at the port reaches the kiosk by the live channel; the screen's count of
    tickets it can decide goes up with it, not only at the next pull (every 30 s or more)."""
    push = {k: v for k, v in good_page(ticket_id=5, seq=5).items() if k not in ("cursor", "has_more")}
    stand_in.live_messages = [
        json.dumps({"type": "hello", "seq": 1, "server_time": "2026-11-24T10:00:00Z"}),
        json.dumps({"type": "tickets", **push}),
    ]
    config = AgentConfig(server_url=stand_in.url, data_dir=str(tmp_path), sync_interval_s=600)
    enrolled(config, "t")
    async with TestClient(TestServer(create_agent_app(config))) as kiosk, kiosk.ws_connect("/ws") as screen:
        await screen_status(screen, lambda s: s["online"] and s["tickets"] >= 1)
        status = await screen_status(screen, lambda s: s["tickets"] == 2)
        assert status["online"] and status["kiosk"] == "Garita 1"
