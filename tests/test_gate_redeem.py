"""Online redeem through the real HTTP API: single use under concurrency, every refusal reason."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from gate_core.codes import SigningKey, decimal_form, issue_code
from server.gate import kiosks
from server.tickets import KEYS, tickets_changed
from server.tickets.service import TicketError, balance, code_for, delete_ticket
from server.web import DB
from tests.dbaccess import is_pg
from tests.gate_support import (
    company_id,
    enrol_kiosk,
    limit_database_pages,
    make_itinerary,
    make_tickets,
    now,
    redeem,
    scan,
)
from tests.helpers import count, db_rows


async def test_twenty_concurrent_redeems_of_one_code_accept_exactly_once(client, config):
    kiosk_a = await enrol_kiosk(client, "Puerta 1")
    kiosk_b = await enrol_kiosk(client, "Puerta 2")
    (ticket,) = await make_tickets(client.server.app, 1)

    verdicts = await asyncio.gather(*(redeem(client, kiosk_a if i % 2 else kiosk_b, ticket["code"]) for i in range(20)))

    accepted = [v for v in verdicts if v["accepted"]]
    refused = [v for v in verdicts if not v["accepted"]]
    assert len(accepted) == 1 and accepted[0]["reason"] == "accepted"
    assert len(refused) == 19 and {v["reason"] for v in refused} == {"already_used"}
    winner = accepted[0]
    for verdict in refused:
        prior = verdict["prior_use"]
        assert prior["scan_id"] == winner["scan_id"]
        assert prior["kiosk_name"] in ("Puerta 1", "Puerta 2") and prior["used_at"]
        assert verdict["text_en"] == "Ticket already used" and verdict["text_es"] == "Ticket ya usado"
    assert db_rows(config, "SELECT COUNT(*) FROM ticket_uses WHERE ticket_id = ?", (ticket["id"],)) == [(1,)]
    assert count(config, "scans") == 20


async def test_delete_racing_a_redeem_never_both_succeed(client, config):
    app = client.server.app
    kiosk = await enrol_kiosk(client)
    tickets = await make_tickets(app, 20)
    company = await company_id(app)
    before = await app[DB].read(balance, company)

    async def delete(ticket_id: int) -> bool:
        try:
            await app[DB].write(delete_ticket, company, ticket_id, now=now())
        except TicketError as exc:
            assert exc.code == "used"
            return False
        await tickets_changed(app, [ticket_id])
        return True

    deleted = redeemed = 0
    for ticket in tickets:
        was_deleted, verdict = await asyncio.gather(delete(ticket["id"]), redeem(client, kiosk, ticket["code"]))
        assert not (was_deleted and verdict["accepted"]), ticket["id"]
        assert was_deleted or verdict["accepted"]
        if not verdict["accepted"]:
            assert verdict["reason"] == "deleted"
        deleted += was_deleted
        redeemed += verdict["accepted"]

    after = await app[DB].read(balance, company)
    assert after.active_tickets == before.active_tickets - deleted
    assert count(config, "ticket_uses") == redeemed
    assert db_rows(config, "SELECT COUNT(*) FROM tickets WHERE used_at IS NOT NULL AND deleted_at IS NOT NULL") == [
        (0,)
    ]


def _altered(code: str) -> str:
    position = 60
    return code[:position] + ("B" if code[position] == "A" else "A") + code[position + 1 :]


async def test_each_bad_code_is_refused_with_its_own_reason(client):
    app = client.server.app
    kiosk = await enrol_kiosk(client)
    good, to_delete, used = await make_tickets(app, 3)
    (unprinted,) = await make_tickets(app, 1, printed=False)
    future = await make_itinerary(app, opens=timedelta(days=1))
    (early,) = await make_tickets(app, 1, itinerary_id=future)
    await app[DB].write(delete_ticket, await company_id(app), to_delete["id"], now=now())
    assert (await redeem(client, kiosk, used["code"]))["accepted"]

    # Signed with another key under our key id: the right shape, a wrong signature.
    forged = issue_code(SigningKey.generate(app[KEYS].current), good["id"], good["itinerary_id"])
    unknown = code_for(app[KEYS], {"id": 9_999_999, "itinerary_id": good["itinerary_id"], "key_id": app[KEYS].current})

    cases = {
        "forged": forged,
        "altered": _altered(good["code"]),
        "truncated": good["code"][:-5],
        "unknown": unknown,
        "unknown_short": "12345678901234567890",
        "deleted": to_delete["code"],
        "unprinted": unprinted["code"],
        "outside_window": early["code"],
        "already_used": used["code"],
        "garbage": "hello\x00world" * 100,
    }
    reasons = {name: (await redeem(client, kiosk, code))["reason"] for name, code in cases.items()}
    assert reasons == {
        "forged": "forged",
        "altered": "forged",
        "truncated": "malformed",
        "unknown": "unknown",
        "unknown_short": "unknown",
        "deleted": "deleted",
        "unprinted": "not_printed",
        "outside_window": "outside_window",
        "already_used": "already_used",
        "garbage": "malformed",
    }
    # The good ticket was never used by all that: it still passes, by its short code too.
    verdict = await redeem(client, kiosk, " ".join([good["short_code"][:10], good["short_code"][10:]]))
    assert verdict["accepted"] and verdict["ticket_id"] == good["id"]
    assert verdict["ticket"]["company_name"] == "Exportadora Andina S.A."
    assert verdict["ticket"]["services"] == ["Contenedor"]


async def test_foreign_itinerary_is_refused_at_a_restricted_kiosk(client):
    app = client.server.app
    mine, other = await make_itinerary(app), await make_itinerary(app)
    (ticket_other,) = await make_tickets(app, 1, itinerary_id=other)
    (ticket_mine,) = await make_tickets(app, 1, itinerary_id=mine)
    kiosk = await enrol_kiosk(client, allowed=[mine])
    assert (await redeem(client, kiosk, ticket_other["code"]))["reason"] == "foreign_itinerary"
    assert (await redeem(client, kiosk, ticket_mine["code"]))["reason"] == "accepted"
    resp = await client.get("/api/v1/gate/me", headers=kiosk["headers"])
    assert (await resp.json())["allowed_itineraries"] == [mine]


async def test_revoked_kiosk_is_refused_at_once(client):
    app = client.server.app
    kiosk = await enrol_kiosk(client)
    (ticket,) = await make_tickets(app, 1)
    assert (await client.get("/api/v1/gate/time", headers=kiosk["headers"])).status == 200
    await app[DB].write(kiosks.revoke_kiosk, kiosk["kiosk_id"], None, now())
    app[kiosks.KIOSKS].revoke(kiosk["kiosk_id"])
    resp = await client.post("/api/v1/gate/redeem", json=scan(ticket["code"]), headers=kiosk["headers"])
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "revoked_kiosk"


async def test_revocation_committed_under_a_cached_kiosk_still_refuses_the_redeem(client, config):
    """The cache can lag a revocation made elsewhere; the redeem transaction re-checks it."""
    app = client.server.app
    kiosk = await enrol_kiosk(client)
    (ticket,) = await make_tickets(app, 1)
    assert (await client.get("/api/v1/gate/time", headers=kiosk["headers"])).status == 200  # now cached
    await app[DB].write(kiosks.revoke_kiosk, kiosk["kiosk_id"], None, now())  # the cache is not told
    if is_pg(config):
        # PostgreSQL tells every node's cache with the commit (NOTIFY): refused at the door.
        resp = await client.post("/api/v1/gate/redeem", json=scan(ticket["code"]), headers=kiosk["headers"])
        assert resp.status == 403 and (await resp.json())["error"]["code"] == "revoked_kiosk"
        assert db_rows(config, "SELECT COUNT(*) FROM scans WHERE ticket_id = ?", (ticket["id"],)) == [(0,)]
        return
    verdict = await redeem(client, kiosk, ticket["code"])
    assert verdict["accepted"] is False and verdict["reason"] == "revoked_kiosk"


async def test_a_retry_with_the_same_scan_id_gets_the_same_answer(client, config):
    app = client.server.app
    kiosk = await enrol_kiosk(client, "Puerta 7")
    first, second = await make_tickets(app, 2)
    scan_id = str(uuid.uuid4())
    answer = await redeem(client, kiosk, first["code"], scan_id)
    again = await redeem(client, kiosk, first["code"], scan_id)
    assert answer["accepted"] and again["accepted"]
    assert {k: v for k, v in answer.items() if k != "server_time"} == {
        k: v for k, v in again.items() if k != "server_time"
    }
    assert db_rows(config, "SELECT COUNT(*) FROM scans WHERE scan_id = ?", (scan_id,)) == [(1,)]

    # A refusal is replayed too, with the same prior use.
    refused_id = str(uuid.uuid4())
    refused = await redeem(client, kiosk, first["short_code"], refused_id)
    assert refused["reason"] == "already_used" and refused["prior_use"]["kiosk_name"] == "Puerta 7"
    replay = await redeem(client, kiosk, first["short_code"], refused_id)
    assert {k: v for k, v in refused.items() if k != "server_time"} == {
        k: v for k, v in replay.items() if k != "server_time"
    }

    # Another kiosk cannot reuse the scan id.
    other = await enrol_kiosk(client)
    resp = await client.post("/api/v1/gate/redeem", json=scan(second["code"], scan_id), headers=other["headers"])
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "scan_id_taken"


async def test_bad_redeem_input_is_a_400_with_the_field_named(client):
    kiosk = await enrol_kiosk(client)
    cases = [
        ({"code": "X", "scanned_at": now().isoformat()}, "scan_id"),
        ({"scan_id": "short", "code": "X", "scanned_at": now().isoformat()}, "scan_id"),
        ({"scan_id": str(uuid.uuid4()), "code": 12, "scanned_at": now().isoformat()}, "code"),
        ({"scan_id": str(uuid.uuid4()), "code": "X", "scanned_at": "2026-11-24T08:00:00"}, "scanned_at"),
        ({"scan_id": str(uuid.uuid4()), "code": "X", "scanned_at": "yesterday"}, "scanned_at"),
    ]
    for body, field in cases:
        resp = await client.post("/api/v1/gate/redeem", json=body, headers=kiosk["headers"])
        assert resp.status == 400, body
        assert field in (await resp.json())["error"]["fields"], body
    resp = await client.post("/api/v1/gate/redeem", data="{not json", headers=kiosk["headers"])
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_json"
    resp = await client.post("/api/v1/gate/redeem", json=[1, 2], headers=kiosk["headers"])
    assert resp.status == 400


async def test_a_ticket_is_one_ticket_in_either_form_of_its_code(client, config):
    """The printed QR carries the decimal form; a ticket printed before carries the base 32 one. Either is
    the same ticket: used once in one form, it is already used in the other, and the scan log keeps the code
    as issued."""
    kiosk = await enrol_kiosk(client, "Puerta 1")
    (ticket,) = await make_tickets(client.server.app, 1)
    first = await redeem(client, kiosk, decimal_form(ticket["code"]))
    again = await redeem(client, kiosk, ticket["code"])
    assert first["accepted"] and first["ticket_id"] == ticket["id"]
    assert not again["accepted"] and again["reason"] == "already_used"
    assert again["prior_use"]["scan_id"] == first["scan_id"]
    assert db_rows(config, "SELECT DISTINCT code FROM scans") == [(ticket["code"],)]


async def test_the_servers_fast_code_check_agrees_with_the_shared_verifier(client):
    """The server re-issues a code to check it (cheaper than verifying); it must agree with parse_code."""
    from gate_core.codes import decimal_form, human_readable, parse_code
    from server.gate.redeem import read_code

    keys = client.server.app[KEYS]
    other_key = SigningKey.generate(keys.current)
    for ticket_id in (1, 77, 2**40 + 3):
        code = code_for(keys, {"id": ticket_id, "itinerary_id": 9, "key_id": keys.current})
        for text in (
            code,
            code.lower(),
            decimal_form(code),
            decimal_form(code).lower(),
            human_readable(code),
            _altered(code),
            code[:-1],
            issue_code(other_key, ticket_id, 9),
        ):
            stored, parsed = read_code(text, keys)
            assert parsed == parse_code(text, keys.verify), text
            assert stored == (parsed.text or text)


async def test_printing_keeps_a_digest_of_the_code_and_redeems_work_with_or_without_it(client, config):
    """Online redeems recognise a printed code by the digest stored at print time; tickets printed
    before digests were kept (none stored) and codes that do not match it fall back to the signature."""
    from server.tickets.service import code_check

    app = client.server.app
    kiosk = await enrol_kiosk(client)
    with_digest, without_digest, wrong_digest = await make_tickets(app, 3)
    (unprinted,) = await make_tickets(app, 1, printed=False)
    stored = dict(
        db_rows(config, "SELECT id, code_check FROM tickets WHERE id IN (?, ?)", (with_digest["id"], unprinted["id"]))
    )
    assert stored == {with_digest["id"]: code_check(with_digest["code"]), unprinted["id"]: None}

    def clear_digest(db, ticket_id, value):
        db.execute("UPDATE tickets SET code_check = ? WHERE id = ?", (value, ticket_id))

    await app[DB].write(clear_digest, without_digest["id"], None)
    await app[DB].write(clear_digest, wrong_digest["id"], bytes(16))
    # A forgery of a printed ticket is still a forgery, whatever the digest says.
    assert (await redeem(client, kiosk, _altered(with_digest["code"])))["reason"] == "forged"
    assert (await redeem(client, kiosk, _altered(wrong_digest["code"])))["reason"] == "forged"
    for ticket in (with_digest, without_digest, wrong_digest):
        verdict = await redeem(client, kiosk, ticket["code"].lower())
        assert verdict["accepted"] and verdict["ticket_id"] == ticket["id"], verdict
    assert (await redeem(client, kiosk, unprinted["code"]))["reason"] == "not_printed"


# SQLite only: the full disk is SQLite's max_page_count (PostgreSQL's disk-full path is is_storage_failure's class 53).
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_full_disk_answers_503_saves_nothing_and_the_same_scan_goes_through_once_there_is_room(client, config):
    app = client.server.app
    kiosk = await enrol_kiosk(client)
    tickets = await make_tickets(app, 150)
    page_count = db_rows(config, "PRAGMA page_count")[0][0]
    await limit_database_pages(app, page_count)
    try:
        for ticket in tickets:
            body = scan(ticket["code"])
            resp = await client.post("/api/v1/gate/redeem", json=body, headers=kiosk["headers"])
            assert resp.status in (200, 503), await resp.text()
            if resp.status == 503:
                break
        else:
            raise AssertionError("the database never ran out of room")
        error = (await resp.json())["error"]
        assert error["code"] == "storage_unavailable" and "almacenamiento" in error["message"]
        assert resp.headers["Retry-After"] == "30"
        assert db_rows(config, "SELECT COUNT(*) FROM scans WHERE scan_id = ?", (body["scan_id"],)) == [(0,)]
        assert db_rows(config, "SELECT used_at FROM tickets WHERE id = ?", (ticket["id"],)) == [(None,)]
        sync = await client.get("/api/v1/gate/sync?cursor=0", headers=kiosk["headers"])
        assert sync.status == 200  # reading needs no room: kiosks keep their cache current meanwhile
    finally:
        await limit_database_pages(app, None)
    retried = await client.post("/api/v1/gate/redeem", json=body, headers=kiosk["headers"])
    assert retried.status == 200 and (await retried.json())["reason"] == "accepted"
    assert db_rows(config, "SELECT COUNT(*) FROM scans WHERE scan_id = ?", (body["scan_id"],)) == [(1,)]
