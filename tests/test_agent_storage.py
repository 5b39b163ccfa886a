"""A kiosk whose disk fills up: the real server in-process, a real agent and its SQLite cache.

A scan the kiosk cannot save could never be reported, so it is not let through on the kiosk's
word: online the server decides (and records it), offline the truck is sent to another lane.
Once there is room again the kiosk saves and decides as before.
"""

from __future__ import annotations

import re

import pytest

from gate_agent.cache import AgentStore
from gate_core.reasons import Reason, reason_text
from tests.agent_app import kiosk_of
from tests.gate_support import limit_kiosk_pages, make_tickets
from tests.helpers import db_rows, login


@pytest.fixture
async def kiosk(client, tmp_path):
    async with kiosk_of(client, tmp_path, "Garita Llena") as agent_and_sync:
        yield agent_and_sync


def _outbox_codes(store: AgentStore) -> list[str]:
    return [row[0] for row in store.db.execute("SELECT code FROM outbox")]


async def test_a_kiosk_that_cannot_save_lets_the_server_decide_or_refuses_and_recovers(client, config, kiosk):
    agent, sync = kiosk
    used, online_one, offline_one = await make_tickets(client.server.app, 3)
    assert await sync.pull() >= 3 and agent.status.online
    first = await agent.handle_code(used["code"])
    assert first["accepted"] and first["mode"] == "online"

    limit_kiosk_pages(agent.store, 0)
    for _ in range(200):  # the outbox's last page fills up with refusals of the used ticket
        verdict = await agent.handle_code(used["code"])
        assert verdict["reason"] == "already_used"  # the server's word, saved or not
        if agent.status.storage_fault:
            break
    assert agent.status.storage_fault and agent.status_message()["storage_fault"] is True

    # The kiosk says so with its next request: the supervisor's kiosk list flags it.
    await sync.pull()
    await login(client, "supervisor", language="en")
    page = await (await client.get("/gate/kiosks")).text()
    assert re.search(r'<tr data-kiosk="\d+"[^>]*>\s*<td[^>]*>Garita Llena</td>.*?storage-fault', page, re.S)

    # Online, the server decides and records a scan the kiosk could not save.
    verdict = await agent.handle_code(online_one["code"])
    assert verdict["accepted"] and verdict["mode"] == "online"
    assert online_one["code"] not in _outbox_codes(agent.store)
    scans = db_rows(config, "SELECT accepted FROM scans WHERE ticket_id = ?", (online_one["id"],))
    assert scans == [(1,)]

    # Offline, nobody can vouch for it: refused, with what to do.
    await client.server.close()
    verdict = await agent.handle_code(offline_one["code"])
    assert not verdict["accepted"] and verdict["reason"] == "storage_fault"
    assert verdict["text"] == reason_text(Reason.STORAGE_FAULT, "es") and verdict["company"]
    assert offline_one["code"] not in _outbox_codes(agent.store)

    # Room again: saved and decided locally, as always offline.
    limit_kiosk_pages(agent.store, None)
    verdict = await agent.handle_code(offline_one["code"])
    assert verdict["accepted"] and verdict["mode"] == "offline"
    assert offline_one["code"] in _outbox_codes(agent.store)
    assert not agent.status.storage_fault
