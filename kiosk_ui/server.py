"""The kiosk screen, served by the agent on localhost and fed over a WebSocket.

``/`` is a full-screen page (no external assets) that shows each verdict big and coloured, with
the reason in the kiosk's language; ``/ws`` pushes verdicts and status and takes hand-typed codes
(a keyboard-wedge scanner types into the same field and presses Enter). ``docs/lane-screen.md``
describes the protocol for a lane display of one's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import WSMsgType, web

from gate_agent.agent import GateAgent
from gate_agent.scanner.manual import InvalidManualCode, clean_manual_code

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
AGENT = web.AppKey("agent", GateAgent)


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})


async def websocket(request: web.Request) -> web.WebSocketResponse:
    agent = request.app[AGENT]
    ws = web.WebSocketResponse(heartbeat=15)
    await ws.prepare(request)

    async def send(message: dict) -> None:
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
    task = asyncio.get_running_loop().create_task(app[AGENT].push_status_changes())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def create_kiosk_app(agent: GateAgent) -> web.Application:
    app = web.Application()
    app[AGENT] = agent
    app.cleanup_ctx.append(status_pushes)
    app.router.add_get("/", index)
    app.router.add_get("/ws", websocket)
    app.router.add_static("/static", STATIC)
    return app
