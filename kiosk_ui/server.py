"""The kiosk screen, served by the agent on localhost and fed over a WebSocket.

``/`` is a full-screen page (no external assets) that shows each verdict big and coloured, with
the reason in the kiosk's language; ``/ws`` pushes verdicts, status and the camera's advice (a ticket
in view it cannot read) and takes hand-typed codes
(a keyboard-wedge scanner types into the same field and presses Enter). ``docs/lane-screen.md``
describes the protocol for a lane display of one's own.

The screen knows the agent only as a :class:`LaneAgent`: the agent's application
(``gate_agent.app``) serves these routes and puts its agent under :data:`LANE_AGENT`, so the
agent depends on the screen and never the other way round.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from aiohttp import WSMsgType, web

from kiosk_ui.typed_code import InvalidManualCode, clean_manual_code

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
#: A screen connected to the agent: it is sent every verdict and status message.
Listener = Callable[[dict[str, Any]], Awaitable[None]]


class LaneAgent(Protocol):
    """What the lane screen asks of the agent: its status, every verdict as it comes, typed codes decided."""

    listeners: list[Listener]

    def status_message(self) -> dict[str, Any]: ...

    async def handle_code(self, text: str, source: str = ...) -> dict[str, Any]: ...

    async def push_status_changes(self) -> None: ...


LANE_AGENT = web.AppKey[LaneAgent]("lane_agent")


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})


async def websocket(request: web.Request) -> web.WebSocketResponse:
    agent = request.app[LANE_AGENT]
    ws = web.WebSocketResponse(heartbeat=15)
    await ws.prepare(request)

    async def send(message: dict[str, Any]) -> None:
        if ws.closed:
            raise ConnectionError("screen closed")
        await ws.send_str(json.dumps(message))

    agent.listeners.append(send)
    await send(agent.status_message())
    try:
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                data = json.loads(message.data)
            except ValueError:
                continue
            if isinstance(data, dict) and data.get("type") == "manual":
                try:
                    code = clean_manual_code(str(data.get("code", "")))
                except InvalidManualCode as exc:
                    await send({"type": "input_error", "reason": exc.reason, "message": str(exc)})
                    continue
                await agent.handle_code(code, "manual")
    finally:
        if send in agent.listeners:
            agent.listeners.remove(send)
    return ws


async def status_pushes(app: web.Application) -> AsyncIterator[None]:
    """While the screen is served, every change of the agent's status reaches it."""
    task = asyncio.get_running_loop().create_task(app[LANE_AGENT].push_status_changes())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def setup_lane_screen(app: web.Application) -> None:
    """Serve the lane screen from ``app``; a cleanup context registered before this one sets :data:`LANE_AGENT`."""
    app.cleanup_ctx.append(status_pushes)
    app.router.add_get("/", index)
    app.router.add_get("/ws", websocket)
    app.router.add_static("/static", STATIC)
