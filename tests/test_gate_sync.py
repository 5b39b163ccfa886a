"""Delta sync by cursor and the live WebSocket, through the real HTTP API."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json

import pytest
from aiohttp import WSMsgType

import server.gate
from server.app import create_app
from server.db import connect
from server.gate.kiosks import KIOSKS
from server.gate.live import changed_since
from server.gate.redeem import _record_use
from server.gate.sync import current_seq
from server.tickets import KEYS, tickets_changed
from server.tickets.service import delete_ticket, print_ticket
from server.web import DB
from tests.gate_support import company_id, enrol_kiosk, make_tickets, now, redeem
from tests.helpers import count, db_rows


async def _sync_all(client, kiosk, cursor: int = 0, limit: int = 7) -> tuple[list[dict], int, list[dict]]:
    """Follow the cursor to the end; returns the rows (as dicts), the final cursor and the pages."""
    rows, pages = [], []
    while True:
        resp = await client.get(f"/api/v1/gate/sync?cursor={cursor}&limit={limit}", headers=kiosk["headers"])
        assert resp.status == 200, await resp.text()
        page = await resp.json()
        pages.append(page)
        rows.extend(dict(zip(page["columns"], row, strict=True)) for row in page["tickets"])
        cursor = page["cursor"]
        if not page["has_more"]:
            return rows, cursor, pages


async def test_cursor_pagination_returns_every_ticket_exactly_once(client, config):
    app = client.server.app
    kiosk = await enrol_kiosk(client)
    tickets = await make_tickets(app, 30)
    tickets += await make_tickets(app, 12, printed=False)

    rows, cursor, pages = await _sync_all(client, kiosk)

    ids = [row["id"] for row in rows]
    every_ticket = [r[0] for r in db_rows(config, "SELECT id FROM tickets ORDER BY id")]  # demo tickets too
    assert sorted(ids) == every_ticket and len(ids) == len(set(ids))
    assert {t["id"] for t in tickets} <= set(ids)
    assert len(pages) >= 6
    seqs = [row["seq"] for row in rows]
    assert seqs == sorted(seqs)
    by_id = {row["id"]: row for row in rows}
    first = tickets[0]
    assert by_id[first["id"]]["printed"] == 1 and by_id[first["id"]]["short_code"] == first["short_code"]
    assert by_id[tickets[-1]["id"]]["printed"] == 0
    # Lookups name what the rows refer to; the public key verifies the codes.
    names = {}
    for page in pages:
        names.update(page["companies"])
        assert (
            page["keys"][str(app[KEYS].current)]
            == base64.b64encode(app[KEYS].verify[app[KEYS].current].public_bytes()).decode()
        )
    assert names[str(first["company_id"])] == "Exportadora Andina S.A."
    first_page = pages[0]
    assert str(first["itinerary_id"]) in first_page["itineraries"]
    generation = first_page["generations"][str(first["generation_id"])]
    assert [first_page["services"][str(s)] for s in generation] == [["Contenedor", "Container"]]

    # Nothing changed: the delta is empty and the cursor stays.
    again, same_cursor, _ = await _sync_all(client, kiosk, cursor)
    assert again == [] and same_cursor == cursor


async def test_a_deletion_a_print_and_a_use_appear_in_the_next_delta(client):
    app = client.server.app
    kiosk = await enrol_kiosk(client, "Puerta 3")
    printed = await make_tickets(app, 3)
    (unprinted,) = await make_tickets(app, 1, printed=False)
    _, cursor, _ = await _sync_all(client, kiosk)
    company = await company_id(app)

    await app[DB].write(delete_ticket, company, printed[0]["id"], now=now())
    await app[DB].write(print_ticket, company, unprinted["id"], now=now())
    assert (await redeem(client, kiosk, printed[1]["code"]))["accepted"]

    rows, _, pages = await _sync_all(client, kiosk, cursor)
    by_id = {row["id"]: row for row in rows}
    assert set(by_id) == {printed[0]["id"], unprinted["id"], printed[1]["id"]}
    assert by_id[printed[0]["id"]]["deleted"] == 1
    assert by_id[unprinted["id"]]["printed"] == 1
    used = by_id[printed[1]["id"]]
    assert used["used_at"] and pages[-1]["kiosks"][str(used["used_by"])] == "Puerta 3"


async def test_tickets_printed_then_used_after_the_cursor_sync_in_small_pages_without_a_gap(client):
    """A use is numbered apart from the print (``used_seq``): a delta finds a ticket by either
    number but carries it once, at the later one, and the cursor never skips a change."""
    app = client.server.app
    kiosk = await enrol_kiosk(client, "Puerta 4")
    _, start, _ = await _sync_all(client, kiosk)
    tickets = await make_tickets(app, 6)
    _, after_prints, _ = await _sync_all(client, kiosk, start)
    for ticket in (tickets[4], tickets[1]):  # used in another order than printed
        assert (await redeem(client, kiosk, ticket["code"]))["accepted"]

    rows, end, _pages = await _sync_all(client, kiosk, start, limit=2)
    assert len(rows) == len({row["id"] for row in rows}) == 6, rows  # a used ticket comes once, not twice
    seqs = [row["seq"] for row in rows]
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))
    latest = {row["id"]: row for row in rows}
    assert set(latest) == {t["id"] for t in tickets}
    assert {i for i, row in latest.items() if row["used_at"]} == {tickets[4]["id"], tickets[1]["id"]}
    assert all(row["printed"] == 1 for row in latest.values())

    # In one page, a ticket found by its print and by its use comes once, as of its use.
    (page,) = (await _sync_all(client, kiosk, start, limit=100))[2]
    one_page = [dict(zip(page["columns"], row, strict=True)) for row in page["tickets"]]
    assert sorted(row["id"] for row in one_page) == sorted(t["id"] for t in tickets)
    assert [row["id"] for row in one_page][-2:] == [tickets[4]["id"], tickets[1]["id"]]
    assert all(row["used_at"] for row in one_page[-2:]) and page["cursor"] == end

    # A kiosk that already had the prints gets just the two uses, in the order they happened.
    uses, same_end, _ = await _sync_all(client, kiosk, after_prints)
    assert [row["id"] for row in uses] == [tickets[4]["id"], tickets[1]["id"]] and same_end == end
    assert all(row["used_at"] and row["seq"] > after_prints for row in uses)
    assert (await _sync_all(client, kiosk, end))[0] == []


async def test_the_live_poll_sees_uses_that_another_worker_recorded(client):
    """Each worker's live hub polls the database for changes made through the others."""
    app = client.server.app
    kiosk = await enrol_kiosk(client)
    tickets = await make_tickets(app, 3)
    cursor = await app[DB].read(current_seq)
    assert (await redeem(client, kiosk, tickets[2]["code"]))["accepted"]
    await app[DB].write(delete_ticket, await company_id(app), tickets[0]["id"], now=now())

    new_cursor, rows = await app[DB].read(changed_since, cursor)
    assert [ticket_id for ticket_id, _seq in rows] == [tickets[2]["id"], tickets[0]["id"]]
    assert new_cursor == rows[-1][1] == await app[DB].read(current_seq)
    assert await app[DB].read(changed_since, new_cursor) == (new_cursor, [])


# SQLite only: it writes from inside SQLite's statement trace callback, mid-scan.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_live_poll_misses_no_use_committed_while_it_reads(client, config):
    """A use and then a deletion (by another worker) commit just as a poll starts its scan: the
    poll may see both or neither, never the deletion alone (its cursor would pass the use)."""
    app = client.server.app
    kiosk = await enrol_kiosk(client)
    used, deleted = await make_tickets(app, 2)
    company = await company_id(app)
    cursor = await app[DB].read(current_seq)

    def other_worker_writes() -> None:
        other = connect(config.db_path)
        try:
            other.execute("BEGIN IMMEDIATE")
            _record_use(other, used["id"], "scan-from-the-other-worker", kiosk["kiosk_id"], "2026-11-24T09:00:00+00:00")
            delete_ticket(other, company, deleted["id"], now=now())
            other.execute("COMMIT")
        finally:
            other.conn.close()

    def poll_while_the_other_worker_commits(db):
        def on_statement(sql: str) -> None:
            if "ORDER BY" in sql and not done:  # as the poll's scan starts
                done.append(True)
                other_worker_writes()

        done: list[bool] = []
        db.conn.set_trace_callback(on_statement)
        try:
            return changed_since(db, cursor)
        finally:
            db.conn.set_trace_callback(None)

    first_cursor, first = await app[DB].read(poll_while_the_other_worker_commits)
    second_cursor, second = await app[DB].read(changed_since, first_cursor)
    assert sorted(ticket_id for ticket_id, _seq in first + second) == sorted([used["id"], deleted["id"]])
    assert second_cursor == await app[DB].read(current_seq)


async def test_sync_is_gzip_compressed_and_records_the_kiosk_cursor(client, config):
    app = client.server.app
    kiosk = await enrol_kiosk(client)
    await make_tickets(app, 50)
    resp = await client.get(
        "/api/v1/gate/sync?cursor=0", headers={**kiosk["headers"], "Accept-Encoding": "gzip"}, auto_decompress=False
    )
    assert resp.headers["Content-Encoding"] == "gzip"

    page = json.loads(gzip.decompress(await resp.read()))
    assert len(page["tickets"]) == count(config, "tickets") >= 50
    await app[KIOSKS].flush()  # saved with the kiosks' liveness (every few seconds), not per pull
    assert db_rows(config, "SELECT last_sync_seq FROM kiosks WHERE id = ?", (kiosk["kiosk_id"],)) == [(page["cursor"],)]


async def test_bad_sync_parameters_are_400(client):
    kiosk = await enrol_kiosk(client)
    for query in ("cursor=abc", "cursor=-1", "limit=0", "limit=1000000"):
        resp = await client.get(f"/api/v1/gate/sync?{query}", headers=kiosk["headers"])
        assert resp.status == 400, query
        assert (await resp.json())["error"]["code"] == "invalid"


async def _next_tickets(ws, timeout: float = 2.0) -> dict:
    """The next ``tickets`` message (pings skipped), or fail after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while True:
            msg = await ws.receive()
            assert msg.type == WSMsgType.TEXT, msg
            data = json.loads(msg.data)
            if data["type"] == "tickets":
                return data


async def test_live_channel_delivers_deletion_print_and_use_within_two_seconds(client):
    app = client.server.app
    listener = await enrol_kiosk(client, "Escucha")
    scanner = await enrol_kiosk(client, "Puerta 9")
    printed = await make_tickets(app, 2)
    (unprinted,) = await make_tickets(app, 1, printed=False)
    company = await company_id(app)

    async with client.ws_connect("/api/v1/gate/live", headers=listener["headers"]) as ws:
        hello = json.loads((await ws.receive()).data)
        assert hello["type"] == "hello" and hello["seq"] > 0

        # Customer portal actions reach kiosks through the ticket listeners.
        await app[DB].write(delete_ticket, company, printed[0]["id"], now=now())
        await tickets_changed(app, [printed[0]["id"]])
        message = await _next_tickets(ws)
        row = dict(zip(message["columns"], message["tickets"][0], strict=True))
        assert row["id"] == printed[0]["id"] and row["deleted"] == 1

        await app[DB].write(print_ticket, company, unprinted["id"], now=now())
        await tickets_changed(app, [unprinted["id"]])
        message = await _next_tickets(ws)
        row = dict(zip(message["columns"], message["tickets"][0], strict=True))
        assert row["id"] == unprinted["id"] and row["printed"] == 1

        # A use at another kiosk.
        assert (await redeem(client, scanner, printed[1]["code"]))["accepted"]
        message = await _next_tickets(ws)
        row = dict(zip(message["columns"], message["tickets"][0], strict=True))
        assert row["id"] == printed[1]["id"] and row["used_at"]
        assert message["kiosks"][str(row["used_by"])] == "Puerta 9"


async def test_live_channel_accepts_the_token_in_the_query_and_refuses_strangers(client):
    kiosk = await enrol_kiosk(client)
    async with client.ws_connect(f"/api/v1/gate/live?token={kiosk['token']}") as ws:
        assert json.loads((await ws.receive()).data)["type"] == "hello"
        await ws.send_str(json.dumps({"pending_uploads": 4}))
    resp = await client.get("/api/v1/gate/live?token=pgk_nope")
    assert resp.status == 401


@pytest.fixture
def liveness_saved_by_hand(monkeypatch):
    """No background save of the kiosks' liveness during the test: the test decides the order."""
    monkeypatch.setattr(server.gate, "LIVENESS_FLUSH_SECONDS", 3600)


async def test_two_workers_saving_in_either_order_keep_the_newest_sync_cursor(
    liveness_saved_by_hand, aiohttp_client, client, config
):
    """Each worker saves the cursors it heard with the kiosks' liveness; the one that served the
    older pull may save last, and must not make the supervisor's sync lag go backwards."""
    first_worker = client.server.app
    second = await aiohttp_client(create_app(config))  # another worker on the same database
    kiosk = await enrol_kiosk(client)
    await make_tickets(first_worker, 3)
    older = await (await client.get("/api/v1/gate/sync?cursor=0", headers=kiosk["headers"])).json()
    await make_tickets(first_worker, 3)
    path = f"/api/v1/gate/sync?cursor={older['cursor']}"
    newer = await (await second.get(path, headers=kiosk["headers"])).json()
    assert newer["cursor"] > older["cursor"]

    await second.server.app[KIOSKS].flush()
    await first_worker[KIOSKS].flush()

    saved = db_rows(config, "SELECT last_sync_seq FROM kiosks WHERE id = ?", (kiosk["kiosk_id"],))
    assert saved == [(newer["cursor"],)]
