"""Redeems on several nodes lock per ticket, not globally (PostgreSQL; see ``server.gate.redeem.redeem_batch``).

Two apps on one PostgreSQL database, as two nodes behind a balancer. A ticket whose row another
transaction holds (a staff action in progress, a slow batch) stalls only the redeems of that
ticket, never the other gates; a retried scan id still gets the first answer, and a kiosk pulling
with its cursor meanwhile never misses a use.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from server.app import create_app
from server.db import direct_connection
from server.demo import install_demo
from tests.dbaccess import db_rows, row_held
from tests.gate_support import enrol_kiosk, make_tickets, now, redeem, scan

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

#: Generous on a loaded box; a redeem that waits for another ticket's lock never ends on its own.
PROMPT_SECONDS = 15.0


async def _two_nodes(config, aiohttp_client):  # noqa: ANN001, ANN202
    first_app = create_app(config)
    first_app.on_startup.append(install_demo)
    first = await aiohttp_client(first_app)
    second = await aiohttp_client(create_app(config))
    return first_app, first, second


async def _uses_pulled(client, kiosk, cursor: int) -> tuple[dict[int, str], int]:  # noqa: ANN001
    """One delta sync from ``cursor``: {ticket id: used scan id} of the used tickets in it, and the next cursor."""
    resp = await client.get(f"/api/v1/gate/sync?cursor={cursor}", headers=kiosk["headers"])
    assert resp.status == 200, await resp.text()
    page = await resp.json()
    ticket_id, used_scan = page["columns"].index("id"), page["columns"].index("used_scan_id")
    return {row[ticket_id]: row[used_scan] for row in page["tickets"] if row[used_scan]}, page["cursor"]


async def test_a_held_ticket_stalls_only_its_own_redeems_and_its_retry_on_the_other_node_gets_the_first_answer(
    config, aiohttp_client
):
    first_app, node_a, node_b = await _two_nodes(config, aiohttp_client)
    gate_a, gate_b = await enrol_kiosk(node_a, "Puerta 1"), await enrol_kiosk(node_b, "Puerta 2")
    held, free = await make_tickets(first_app, 2)
    _pulled, cursor = await _uses_pulled(node_b, gate_b, 0)

    with row_held(config, "tickets", held["id"]):
        scan_id = str(uuid.uuid4())
        waiting = asyncio.ensure_future(redeem(node_a, gate_a, held["code"], scan_id))
        await asyncio.sleep(0.5)  # node A's batch is now waiting for the held row
        assert not waiting.done()

        # Another gate's truck, another ticket: through at once on the other node.
        verdict = await asyncio.wait_for(redeem(node_b, gate_b, free["code"]), PROMPT_SECONDS)
        assert verdict["accepted"] and verdict["reason"] == "accepted"
        pulled, cursor = await _uses_pulled(node_b, gate_b, cursor)
        assert pulled == {free["id"]: verdict["scan_id"]}

        # The held ticket's scan retried through the other node (the kiosk's answer was late) waits too.
        retried = asyncio.ensure_future(redeem(node_b, gate_a, held["code"], scan_id))
        await asyncio.sleep(0.5)
        assert not waiting.done() and not retried.done()

    first, retry = await asyncio.wait_for(asyncio.gather(waiting, retried), PROMPT_SECONDS)
    assert first["accepted"] and first["reason"] == "accepted"
    # The first answer, whichever node decided it.
    assert {key: retry[key] for key in ("accepted", "reason", "ticket_id", "scan_id")} == {
        key: first[key] for key in ("accepted", "reason", "ticket_id", "scan_id")
    }
    assert db_rows(config, "SELECT COUNT(*) FROM scans WHERE scan_id = ?", (scan_id,)) == [(1,)]
    # The kiosk resumes from its cursor and learns the use committed after it.
    pulled, _cursor = await _uses_pulled(node_b, gate_b, cursor)
    assert pulled == {held["id"]: scan_id}


async def test_many_redeems_over_two_nodes_accept_each_ticket_once_and_a_pulling_kiosk_misses_no_use(
    config, aiohttp_client
):
    """Four trucks per ticket over two nodes, and a kiosk pulling with its cursor all along."""
    first_app, node_a, node_b = await _two_nodes(config, aiohttp_client)
    gates = [await enrol_kiosk(node, f"Puerta {i}") for i, node in enumerate((node_a, node_b, node_a, node_b))]
    watcher = await enrol_kiosk(node_b, "Puerta del muelle")
    tickets = await make_tickets(first_app, 30)
    race_over = asyncio.Event()
    seen: dict[int, str] = {}

    async def pull_all_along() -> None:
        cursor = 0
        while True:
            last_round = race_over.is_set()
            pulled, cursor = await _uses_pulled(node_a, watcher, cursor)
            seen.update(pulled)
            if last_round:
                return
            await asyncio.sleep(0.05)

    puller = asyncio.ensure_future(pull_all_along())
    trucks = [(i, gate, ticket) for ticket in tickets for i, gate in enumerate(gates)]
    verdicts = await asyncio.gather(
        *(redeem(node_a if i % 2 == 0 else node_b, gate, ticket["code"]) for i, gate, ticket in trucks)
    )
    race_over.set()
    await puller

    winners: dict[int, str] = {}
    for (_i, _gate, ticket), verdict in zip(trucks, verdicts, strict=True):
        if verdict["accepted"]:
            assert ticket["id"] not in winners, f"ticket {ticket['id']} accepted twice"
            winners[ticket["id"]] = verdict["scan_id"]
        else:
            assert verdict["reason"] == "already_used"
    assert set(winners) == {ticket["id"] for ticket in tickets}
    assert seen == winners  # every use reached the pulling kiosk, with its winning scan
    numbers = db_rows(config, "SELECT used_seq FROM tickets WHERE used_seq IS NOT NULL")
    assert len({number for (number,) in numbers}) == len(tickets)


async def test_a_scan_id_another_transaction_is_recording_gets_its_answer_once_committed_never_an_error(
    config, aiohttp_client
):
    """A code that names no ticket has no row to lock: the scans table keeps its scan id unique.

    Another node's transaction is recording the scan (the kiosk's retry reached both): this node's
    batch waits for it, and answers as it did instead of failing.
    """
    _first_app, node_a, _node_b = await _two_nodes(config, aiohttp_client)
    gate = await enrol_kiosk(node_a, "Puerta 1")
    text = "NOT-A-TICKET-1234"
    learnt = await redeem(node_a, gate, text)  # what the server says of such a code
    assert not learnt["accepted"]
    scan_id, at = str(uuid.uuid4()), now().isoformat()

    with direct_connection(config.db_url) as other_node:
        other_node.execute("BEGIN")
        other_node.execute(
            "INSERT INTO scans (scan_id, kiosk_id, code, scanned_at, received_at, mode, accepted, reason) "
            "VALUES (?, ?, ?, ?, ?, 'online', 0, ?)",
            (scan_id, gate["kiosk_id"], text, at, at, learnt["reason"]),
        )
        answer = asyncio.ensure_future(
            node_a.post("/api/v1/gate/redeem", json=scan(text, scan_id), headers=gate["headers"])
        )
        await asyncio.sleep(1.0)
        assert not answer.done()  # the batch's insert waits for the other transaction
        other_node.execute("COMMIT")

    resp = await asyncio.wait_for(answer, PROMPT_SECONDS)
    assert resp.status == 200, await resp.text()
    verdict = await resp.json()
    assert (verdict["scan_id"], verdict["accepted"], verdict["reason"]) == (scan_id, False, learnt["reason"])
    assert db_rows(config, "SELECT COUNT(*) FROM scans WHERE scan_id = ?", (scan_id,)) == [(1,)]
