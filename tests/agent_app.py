"""The agent's application (``gate_agent.app.create_agent_app``) started in the test's event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from gate_agent.app import AGENT, SYNC, create_agent_app
from gate_agent.cache import AgentStore
from gate_agent.config import AgentConfig
from tests.gate_support import enrol_kiosk


def enrolled(config: AgentConfig, token: str) -> None:
    """Give the kiosk in ``config.data_dir`` an access token, as ``portgate-agent enrol`` does."""
    store = AgentStore(config.db_path)
    try:
        store.set_meta({"token": token})
    finally:
        store.close()


@asynccontextmanager
async def started_agent(config: AgentConfig, token: str, **options: Any) -> AsyncIterator[web.AppRunner]:
    """The agent's app with everything it owns started (not yet serving a port), stopped on leaving."""
    enrolled(config, token)
    runner = web.AppRunner(create_agent_app(config, **options))
    await runner.setup()
    try:
        yield runner
    finally:
        await runner.cleanup()


@asynccontextmanager
async def kiosk_of(client: Any, tmp_path: Any, name: str) -> AsyncIterator[tuple[Any, Any]]:
    """A kiosk enrolled as ``name`` on the test's server, its agent started (not kept in sync on its own, and
    patient with a slow box): its agent and sync client."""
    enrolled_kiosk = await enrol_kiosk(client, name)
    url = str(client.server.make_url("")).rstrip("/")
    config = AgentConfig(server_url=url, data_dir=str(tmp_path / "agent"), online_timeout_ms=5000)
    async with started_agent(config, enrolled_kiosk["token"], keep_in_sync=False) as runner:
        yield runner.app[AGENT], runner.app[SYNC]
