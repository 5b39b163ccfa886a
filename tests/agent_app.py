"""The agent's application (``gate_agent.app.create_agent_app``) started in the test's event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from gate_agent.app import create_agent_app
from gate_agent.cache import AgentStore
from gate_agent.config import AgentConfig


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
