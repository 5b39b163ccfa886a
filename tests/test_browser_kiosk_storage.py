"""The kiosk screen when the kiosk's disk is full (Chromium on the real kiosk page and agent).

The agent runs in this process on an event loop of its own thread, serving the real kiosk page; its
SQLite cache is filled up (``PRAGMA max_page_count``, as a full disk would) and the server is out of
reach, so a scan can be neither saved nor decided by the server.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator

import pytest
from aiohttp import web

from gate_agent.agent import new_scan_id
from gate_agent.app import STORE
from gate_agent.cache import AgentStore, OutboxEntry
from gate_agent.config import AgentConfig
from gate_core.reasons import Reason
from tests.agent_app import started_agent
from tests.gate_support import limit_kiosk_pages
from tests.mailbox import free_port


def _fill_up(store: AgentStore) -> None:
    """Let the cache grow no more, then save scans until the last page has no room either."""
    limit_kiosk_pages(store, 0)
    for _ in range(1000):
        try:
            store.record_scan(
                OutboxEntry(new_scan_id(), "PG1FILLER", "2026-01-01T00:00:00+00:00", False, Reason.MALFORMED), None, 0.0
            )
        except sqlite3.OperationalError:
            return
    raise AssertionError("the cache never filled up")


@pytest.fixture
def full_kiosk(tmp_path) -> Iterator[str]:
    """The kiosk page's URL, served by an agent whose disk is full and whose server is unreachable."""
    port = free_port()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop = asyncio.Event()

    async def serve() -> None:
        config = AgentConfig(server_url=f"http://127.0.0.1:{free_port()}", data_dir=str(tmp_path))  # unreachable
        async with started_agent(config, "pgk_unused", keep_in_sync=False) as runner:
            _fill_up(runner.app[STORE])
            await web.TCPSite(runner, "127.0.0.1", port).start()
            started.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(15), "the kiosk page did not start"
    yield f"http://127.0.0.1:{port}/"
    loop.call_soon_threadsafe(stop.set)
    thread.join(15)
    loop.close()


def test_a_scan_the_full_kiosk_cannot_save_is_refused_on_screen_with_what_to_do(chromium, full_kiosk):
    context = chromium.new_context(viewport={"width": 800, "height": 480})  # the small kiosk display
    try:
        screen = context.new_page()
        screen.goto(full_kiosk)
        screen.wait_for_selector("#online[data-online='0']")
        screen.keyboard.type("12345678901234567890")
        screen.keyboard.press("Enter")
        screen.wait_for_selector("#verdict[data-state='refused'][data-reason='storage_fault']", timeout=15_000)
        assert screen.locator("#verdict-title").inner_text() == "RECHAZADO"
        assert screen.locator("#verdict-reason").inner_text() == (
            "Este kiosco no puede guardar escaneos: no deje pasar el camión por aquí y avise al supervisor."
        )
        screen.wait_for_selector("#online[data-fault='1']")
        assert screen.locator("#online").inner_text() == "NO SE PUEDEN GUARDAR ESCANEOS"
    finally:
        context.close()
