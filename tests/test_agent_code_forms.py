"""A kiosk reads a ticket's code in either printed form (the decimal form new tickets carry, the base 32 form
of tickets printed before) as one ticket: online and offline, and its screen shows the code masked the same
way. The real server in-process, a real agent and its SQLite cache."""

from __future__ import annotations

import pytest

from gate_core.codes import decimal_form, mask_code
from tests.agent_app import kiosk_of
from tests.gate_support import make_tickets


@pytest.fixture
async def kiosk(client, tmp_path):
    async with kiosk_of(client, tmp_path, "Garita Norte") as agent_and_sync:
        yield agent_and_sync


async def test_either_form_of_a_code_is_the_same_ticket_online_and_offline(client, kiosk):
    agent, sync = kiosk
    online_one, offline_one = await make_tickets(client.server.app, 2)
    assert await sync.pull() >= 2 and agent.status.online

    first = await agent.handle_code(decimal_form(online_one["code"]))
    assert first["accepted"] and first["mode"] == "online" and first["ticket_id"] == online_one["id"]
    # The screen shows the code as the portal masks it, not 180 dots and four digits.
    assert first["code"] == mask_code(online_one["code"])
    again = await agent.handle_code(online_one["code"])
    assert not again["accepted"] and again["reason"] == "already_used"

    await client.server.close()
    offline = await agent.handle_code(decimal_form(offline_one["code"]))
    assert offline["accepted"] and offline["mode"] == "offline" and offline["ticket_id"] == offline_one["id"]
    again = await agent.handle_code(offline_one["code"].lower())
    assert not again["accepted"] and again["reason"] == "already_used" and again["mode"] == "offline"
