"""Uploads of scans decided offline: exactly once by scan id, conflicts never dropped, resolvable."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest

from server.tickets.service import delete_ticket
from server.web import DB
from tests.gate_support import company_id, enrol_kiosk, limit_database_pages, make_tickets, now, redeem, scan
from tests.helpers import count, db_rows, get_form, login


def offline(code: str, accepted: bool = True, reason: str = "accepted", minutes_ago: int = 5) -> dict:
    return {**scan(code, scanned_at=now() - timedelta(minutes=minutes_ago)), "accepted": accepted, "reason": reason}


async def upload(client, kiosk, scans: list[dict], **extra) -> dict[str, dict]:
    resp = await client.post("/api/v1/gate/scans", json={"scans": scans, **extra}, headers=kiosk["headers"])
    assert resp.status == 200, await resp.text()
    return {r["scan_id"]: r for r in (await resp.json())["results"]}


async def test_batch_upload_is_idempotent(client, config):
    app = client.server.app
    kiosk = await enrol_kiosk(client)
    used, refused_one = await make_tickets(app, 2)
    batch = [
        offline(used["code"]),
        offline(refused_one["short_code"], accepted=False, reason="outside_window"),
        offline("PG1NOTACODE", accepted=False, reason="malformed"),
    ]
    first = await upload(client, kiosk, batch, pending_uploads=0)
    assert [first[s["scan_id"]]["outcome"] for s in batch] == ["use_recorded", "logged", "logged"]
    rows_before = (count(config, "scans"), count(config, "ticket_uses"), count(config, "conflicts"))

    again = await upload(client, kiosk, batch)
    assert again == first
    assert (count(config, "scans"), count(config, "ticket_uses"), count(config, "conflicts")) == rows_before
    (use,) = db_rows(config, "SELECT scan_id, kiosk_id FROM ticket_uses WHERE ticket_id = ?", (used["id"],))
    assert use == (batch[0]["scan_id"], kiosk["kiosk_id"])
    mode, accepted, local = db_rows(
        config, "SELECT mode, accepted, local_reason FROM scans WHERE scan_id = ?", (batch[1]["scan_id"],)
    )[0]
    assert (mode, accepted, local) == ("offline", 0, "outside_window")
    # The online redeem now sees the offline use.
    assert (await redeem(client, kiosk, used["code"]))["reason"] == "already_used"


async def test_two_kiosks_accepting_one_ticket_offline_make_one_conflict_resolved_with_a_note(client, config):
    app = client.server.app
    north = await enrol_kiosk(client, "Puerta Norte")
    south = await enrol_kiosk(client, "Puerta Sur")
    (ticket,) = await make_tickets(app, 1)
    north_scan, south_scan = offline(ticket["code"], minutes_ago=9), offline(ticket["short_code"], minutes_ago=7)

    north_result = await upload(client, north, [north_scan])
    assert north_result[north_scan["scan_id"]]["outcome"] == "use_recorded"
    result = (await upload(client, south, [south_scan]))[south_scan["scan_id"]]
    assert result == {
        "scan_id": south_scan["scan_id"],
        "outcome": "conflict",
        "reason": "already_used",
        "conflict": "double_accept",
    }
    assert await upload(client, south, [south_scan]) == {south_scan["scan_id"]: result}  # re-upload: same
    assert await upload(client, north, [north_scan]) == north_result
    assert db_rows(config, "SELECT kind, first_scan_id, second_scan_id FROM conflicts") == [
        ("double_accept", north_scan["scan_id"], south_scan["scan_id"])
    ]
    assert count(config, "ticket_uses") == 1

    await login(client, "supervisor", language="en")
    page = await (await client.get("/gate/conflicts")).text()
    row = re.search(r'<tr data-conflict="(\d+)" data-kind="double_accept" data-ticket="(\d+)">(.*?)</tr>', page, re.S)
    assert row and int(row[2]) == ticket["id"]
    assert "Puerta Norte" in row[3] and "Puerta Sur" in row[3] and "Accepted twice" in row[3]

    _page, hidden = await get_form(client, "/gate/conflicts")
    resp = await client.post(f"/gate/conflicts/{row[1]}/resolve", data={**hidden, "note": ""})
    assert resp.status == 400 and 'data-field="note"' in await resp.text()
    note = "Segundo camión era el mismo; verificado por cámara."
    resp = await client.post(f"/gate/conflicts/{row[1]}/resolve", data={**hidden, "note": note})
    assert resp.status == 200 and resp.url.query.get("status") == "resolved"
    assert note in await resp.text()
    assert db_rows(config, "SELECT resolution, resolved_at IS NOT NULL FROM conflicts") == [(note, 1)]
    open_page = await (await client.get("/gate/conflicts")).text()
    assert 'data-kind="double_accept"' not in open_page and "No records" in open_page


async def test_offline_accept_after_online_use_and_after_deletion_are_conflicts(client, config):
    app = client.server.app
    online, offline_kiosk = await enrol_kiosk(client), await enrol_kiosk(client)
    used, deleted = await make_tickets(app, 2)
    assert (await redeem(client, online, used["code"]))["accepted"]
    await app[DB].write(delete_ticket, await company_id(app), deleted["id"], now=now())
    batch = [offline(used["code"]), offline(deleted["code"])]
    results = await upload(client, offline_kiosk, batch)
    assert results[batch[0]["scan_id"]]["conflict"] == "double_accept"
    assert results[batch[1]["scan_id"]] == {
        "scan_id": batch[1]["scan_id"],
        "outcome": "conflict",
        "reason": "deleted",
        "conflict": "accepted_after_delete",
    }
    assert sorted(r[0] for r in db_rows(config, "SELECT kind FROM conflicts")) == [
        "accepted_after_delete",
        "double_accept",
    ]
    assert db_rows(config, "SELECT used_at FROM tickets WHERE id = ?", (deleted["id"],)) == [(None,)]


async def test_a_scan_already_redeemed_online_uploads_as_the_same_outcome(client, config):
    app = client.server.app
    kiosk = await enrol_kiosk(client)
    (ticket,) = await make_tickets(app, 1)
    scan_id = str(uuid.uuid4())
    assert (await redeem(client, kiosk, ticket["code"], scan_id))["accepted"]
    item = {**offline(ticket["code"]), "scan_id": scan_id}
    assert (await upload(client, kiosk, [item]))[scan_id]["outcome"] == "use_recorded"
    assert count(config, "conflicts") == 0 and count(config, "scans") == 1


async def test_bad_batches_are_refused_whole_and_name_the_entry(client, config):
    kiosk = await enrol_kiosk(client)
    (ticket,) = await make_tickets(client.server.app, 1)
    good = offline(ticket["code"])
    cases = [
        ({"scans": []}, "scans"),
        ({"scans": "nope"}, "scans"),
        ({"scans": [good] * 501}, "scans"),
        ({"scans": [good, {**offline("x"), "reason": "because"}]}, "scans.1.reason"),
        ({"scans": [good, {**offline("x"), "accepted": "yes"}]}, "scans.1.accepted"),
        ({"scans": [good, {**offline("x"), "accepted": True, "reason": "forged"}]}, "scans.1.reason"),
        ({"scans": [good, {**offline("x"), "scanned_at": "2026-11-24 08:00"}]}, "scans.1.scanned_at"),
        ({"scans": [good, 7]}, "scans.1"),
    ]
    for body, field in cases:
        resp = await client.post("/api/v1/gate/scans", json=body, headers=kiosk["headers"])
        assert resp.status == 400, field
        assert field in (await resp.json())["error"]["fields"], field
    assert count(config, "scans") == 0


async def test_pending_uploads_reach_the_kiosk_list(client):
    kiosk = await enrol_kiosk(client, "Puerta Pendiente")
    resp = await client.get("/api/v1/gate/time", headers={**kiosk["headers"], "X-Pending-Uploads": "17"})
    assert resp.status == 200
    await login(client, "supervisor", language="en")
    page = await (await client.get("/gate/kiosks")).text()
    row = re.search(rf'<tr data-kiosk="{kiosk["kiosk_id"]}"[^>]*>(.*?)</tr>', page, re.S)[1]
    assert re.search(r'<td class="pending"[^>]*>17</td>', row) and "Online" in row


async def test_a_long_backlog_is_recorded_whole_and_in_order_across_transactions(client, config):
    """More scans than one write transaction takes (api.OFFLINE_WRITE_CHUNK): every scan recorded
    once, answers in the order sent, every kind of outcome the same when the upload is sent again,
    and a second accept of a ticket from an earlier part of the same upload is still a conflict."""
    from server.gate.api import OFFLINE_WRITE_CHUNK

    app = client.server.app
    kiosk = await enrol_kiosk(client)
    tickets = await make_tickets(app, OFFLINE_WRITE_CHUNK + 10)
    deleted = tickets.pop()
    await app[DB].write(delete_ticket, await company_id(app), deleted["id"], now=now())
    batch = [offline(t["code"], minutes_ago=30) for t in tickets]
    forged = tickets[1]["code"][:-1] + ("A" if tickets[1]["code"][-1] != "A" else "B")
    batch += [
        offline(tickets[0]["short_code"], minutes_ago=1),  # the first ticket again, in the last part
        offline(deleted["code"], minutes_ago=1),  # accepted offline after its deletion
        offline(forged, minutes_ago=1),  # accepted offline although forged
        offline("0" * 20, minutes_ago=1),  # a short code nobody issued
        offline(tickets[2]["code"], accepted=False, reason="outside_window", minutes_ago=1),  # refused there
    ]
    resp = await client.post("/api/v1/gate/scans", json={"scans": batch}, headers=kiosk["headers"])
    assert resp.status == 200
    results = (await resp.json())["results"]
    assert [r["scan_id"] for r in results] == [s["scan_id"] for s in batch]
    outcomes = [(r["outcome"], r["reason"], r["conflict"]) for r in results]
    assert outcomes[: len(tickets)] == [("use_recorded", "accepted", None)] * len(tickets)
    assert outcomes[len(tickets) :] == [
        ("conflict", "already_used", "double_accept"),
        ("conflict", "deleted", "accepted_after_delete"),
        ("logged", "forged", None),
        ("logged", "unknown", None),
        ("logged", "outside_window", None),
    ]
    assert count(config, "scans") == len(batch) and count(config, "conflicts") == 2
    # Sent again (the kiosk never got the answer): the very same answers, read from what was stored.
    again = await upload(client, kiosk, batch)
    assert [again[s["scan_id"]] for s in batch] == results
    assert count(config, "scans") == len(batch) and count(config, "conflicts") == 2


# SQLite only: the full disk is SQLite's max_page_count.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_upload_that_fails_half_way_is_made_good_by_the_kiosks_resend(client, config):
    """The disk fills up while a long backlog is being written (50 scans per transaction): the parts
    written stay, the rest is not, the kiosk gets a 503 and re-sends the whole batch, and every scan
    ends up recorded exactly once with the outcome it would have had in one go."""
    app = client.server.app
    kiosk = await enrol_kiosk(client)
    tickets = await make_tickets(app, 200)
    batch = [offline(t["code"], minutes_ago=30 - i // 10) for i, t in enumerate(tickets)]
    batch.append(offline(tickets[0]["code"], minutes_ago=1))  # the same ticket again: a conflict
    for room in range(10, 150, 5):  # pages left: enough for some of the parts, not for all
        await limit_database_pages(app, db_rows(config, "PRAGMA page_count")[0][0] + room)
        try:
            resp = await client.post("/api/v1/gate/scans", json={"scans": batch}, headers=kiosk["headers"])
        finally:
            await limit_database_pages(app, None)
        assert resp.status == 503, "the whole batch fitted: the disk never filled up half-way"
        assert (await resp.json())["error"]["code"] == "storage_unavailable"
        if count(config, "scans"):
            break
    written = count(config, "scans")
    assert 0 < written < len(batch) and written % 50 == 0  # whole parts only

    results = await upload(client, kiosk, batch)  # the kiosk re-sends it all

    assert [results[s["scan_id"]]["outcome"] for s in batch] == ["use_recorded"] * 200 + ["conflict"]
    assert results[batch[-1]["scan_id"]]["conflict"] == "double_accept"
    assert count(config, "scans") == len(batch)
    assert db_rows(config, "SELECT COUNT(DISTINCT scan_id) FROM scans") == [(len(batch),)]
    assert count(config, "ticket_uses") == 200 and count(config, "conflicts") == 1


async def test_a_local_accept_after_an_online_refusal_whose_answer_was_lost_is_a_conflict(client, config):
    """Kiosk B's online redeem was refused (already used) but the answer came too late: B let the
    truck through on its local verdict and reports that. Two trucks entered; the supervisor sees it."""
    app = client.server.app
    north, south = await enrol_kiosk(client, "Puerta Norte"), await enrol_kiosk(client, "Puerta Sur")
    (ticket,) = await make_tickets(app, 1)
    first = await redeem(client, north, ticket["code"])
    assert first["accepted"]
    late = str(uuid.uuid4())
    assert (await redeem(client, south, ticket["short_code"], late))["reason"] == "already_used"

    report = {**offline(ticket["short_code"], minutes_ago=0), "scan_id": late}
    result = (await upload(client, south, [report]))[late]
    assert result == {"scan_id": late, "outcome": "conflict", "reason": "already_used", "conflict": "overrode_refusal"}
    assert await upload(client, south, [report]) == {late: result}  # same scan id, same answer
    assert db_rows(config, "SELECT kind, first_scan_id, second_scan_id FROM conflicts") == [
        ("overrode_refusal", first["scan_id"], late)
    ]
    # The scan log shows what the kiosk did (let it through), beside what the server said.
    assert db_rows(config, "SELECT accepted, reason, local_reason FROM scans WHERE scan_id = ?", (late,)) == [
        (1, "already_used", "accepted")
    ]
    await login(client, "supervisor", language="en")
    page = await (await client.get("/gate/conflicts")).text()
    row = re.search(r'<tr data-conflict="\d+" data-kind="overrode_refusal"[^>]*>(.*?)</tr>', page, re.S)
    assert row and "against the server&#39;s refusal" in row[1] and "Puerta Sur" in row[1]
    assert "Server: Ticket already used" in row[1]
    log_page = await (await client.get("/gate/scans")).text()
    log_row = re.search(rf'<tr data-scan="{late}"[^>]*data-accepted="1">', log_page)
    assert log_row, "the scan log shows the kiosk's accept"


async def test_a_local_accept_of_a_ticket_the_server_refused_for_another_reason_uses_it_and_is_a_conflict(
    client, config
):
    app = client.server.app
    kiosk = await enrol_kiosk(client)
    unprinted, also_unprinted = await make_tickets(app, 2, printed=False)
    # Refused online (not printed), the answer lost, the kiosk's stale cache let the truck through.
    late = str(uuid.uuid4())
    assert (await redeem(client, kiosk, unprinted["code"], late))["reason"] == "not_printed"
    result = (await upload(client, kiosk, [{**offline(unprinted["code"]), "scan_id": late}]))[late]
    assert (result["outcome"], result["conflict"]) == ("conflict", "overrode_refusal")
    # Decided offline from a cache that thought it printed: the same.
    offline_scan = offline(also_unprinted["code"])
    result = (await upload(client, kiosk, [offline_scan]))[offline_scan["scan_id"]]
    assert (result["outcome"], result["reason"], result["conflict"]) == ("conflict", "not_printed", "overrode_refusal")
    # Either way a truck went in on that ticket: it cannot let a second one in.
    assert db_rows(
        config,
        "SELECT used_scan_id FROM tickets WHERE id IN (?, ?) ORDER BY id",
        (unprinted["id"], also_unprinted["id"]),
    ) == [
        (late,),
        (offline_scan["scan_id"],),
    ]
    assert count(config, "conflicts") == 2


async def test_the_earlier_scan_is_the_first_use_whichever_kiosk_uploads_first(client, config):
    app = client.server.app
    north, south = await enrol_kiosk(client, "Puerta Norte"), await enrol_kiosk(client, "Puerta Sur")
    (ticket,) = await make_tickets(app, 1)
    later, earlier = offline(ticket["code"], minutes_ago=3), offline(ticket["short_code"], minutes_ago=8)
    assert (await upload(client, north, [later]))[later["scan_id"]]["outcome"] == "use_recorded"
    result = (await upload(client, south, [earlier]))[earlier["scan_id"]]
    assert (result["outcome"], result["conflict"]) == ("conflict", "double_accept")
    assert db_rows(config, "SELECT first_scan_id, second_scan_id FROM conflicts") == [
        (earlier["scan_id"], later["scan_id"])
    ]
    # The ticket's use is the earlier scan, at its own time.
    (used_scan, used_at) = db_rows(config, "SELECT used_scan_id, used_at FROM tickets WHERE id = ?", (ticket["id"],))[0]
    assert used_scan == earlier["scan_id"] and used_at.startswith(earlier["scanned_at"][:16])
    # Re-uploads get the answers they got before.
    assert (await upload(client, south, [earlier]))[earlier["scan_id"]] == result
    assert (await upload(client, north, [later]))[later["scan_id"]]["outcome"] == "use_recorded"
    await login(client, "supervisor", language="en")
    page = await (await client.get("/gate/conflicts")).text()
    row = re.search(r'<tr data-conflict="\d+" data-kind="double_accept"[^>]*>(.*?)</tr>', page, re.S)[1]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    assert "Puerta Sur" in cells[4] and "Puerta Norte" in cells[5]  # first use, second acceptance
