"""The supervisor's scan log: every scan visible, filters, keyset pages; the kiosk list's health."""

from __future__ import annotations

import html
import re
from datetime import timedelta

from gate_core.codes import decimal_form
from server.gate.kiosks import KIOSKS
from tests.gate_support import enrol_kiosk, make_tickets, now, redeem
from tests.helpers import db_rows, login

ROW_RE = re.compile(r'<tr data-scan="([^"]+)" data-reason="([a-z_]+)" data-accepted="(\d)">')


async def _log(client, query: str = "") -> tuple[list[tuple[str, str, str]], str]:
    resp = await client.get(f"/gate/scans{query}")
    assert resp.status == 200, await resp.text()
    page = await resp.text()
    found = re.search(r'<a href="([^"]+)" id="next-page">', page)
    return ROW_RE.findall(page), html.unescape(found[1]) if found else ""


async def test_scan_log_shows_every_scan_and_filters_it(client):
    app = client.server.app
    north, south = await enrol_kiosk(client, "Puerta Norte"), await enrol_kiosk(client, "Puerta Sur")
    first, second = await make_tickets(app, 2)
    accepted = await redeem(client, north, first["code"])
    again = await redeem(client, south, first["short_code"])
    forged = await redeem(client, south, first["code"][:-1] + ("A" if first["code"][-1] != "A" else "B"))
    malformed = await redeem(client, north, "NOT A CODE")
    other = await redeem(client, north, second["code"])

    await login(client, "supervisor", language="en")
    rows, _ = await _log(client)
    ids = [r[0] for r in rows]
    assert ids[:5] == [v["scan_id"] for v in (other, malformed, forged, again, accepted)]
    resp = await client.get("/gate/scans")
    assert resp.headers.get("Refresh") == "10"  # the unfiltered first page is the live view
    page = await resp.text()
    assert "Puerta Norte" in page and "Exportadora Andina S.A." in page and "Ticket already used" in page

    kiosk_rows, _ = await _log(client, f"?kiosk={south['kiosk_id']}")
    assert {r[0] for r in kiosk_rows} == {again["scan_id"], forged["scan_id"]}
    refused, _ = await _log(client, "?accepted=0")
    assert {r[0] for r in refused} == {again["scan_id"], forged["scan_id"], malformed["scan_id"]}
    accepted_rows, _ = await _log(client, "?accepted=1")
    assert {r[0] for r in accepted_rows} == {accepted["scan_id"], other["scan_id"]}
    by_reason, _ = await _log(client, "?reason=forged")
    assert [r[0] for r in by_reason] == [forged["scan_id"]]
    both, _ = await _log(client, f"?kiosk={north['kiosk_id']}&accepted=1")
    assert {r[0] for r in both} == {accepted["scan_id"], other["scan_id"]}

    # A code finds every scan of its ticket, whichever form was scanned.
    by_code, _ = await _log(client, f"?code={first['short_code']}")
    assert {r[0] for r in by_code} == {accepted["scan_id"], again["scan_id"]}
    by_full, _ = await _log(client, f"?code={first['code']}")
    assert {r[0] for r in by_full} == {accepted["scan_id"], again["scan_id"]}
    by_printed, _ = await _log(client, f"?code={decimal_form(first['code'])}")  # what a phone reads off the QR
    assert {r[0] for r in by_printed} == {accepted["scan_id"], again["scan_id"]}
    # A forged ticket names no ticket: its scans are found by the code as logged, whichever form is searched.
    forged_code = first["code"][:-1] + ("A" if first["code"][-1] != "A" else "B")
    for text in (forged_code, decimal_form(forged_code)):
        by_forged, _ = await _log(client, f"?code={text}")
        assert [r[0] for r in by_forged] == [forged["scan_id"]], text
    by_text, _ = await _log(client, "?code=not-a")
    assert [r[0] for r in by_text] == [malformed["scan_id"]]

    today = now().date()
    dated, _ = await _log(client, f"?from={today}&to={today}")
    assert len(dated) == 5
    assert (await _log(client, f"?to={today - timedelta(days=1)}"))[0] == []
    assert (await _log(client, f"?from={today + timedelta(days=1)}"))[0] == []
    resp = await client.get("/gate/scans?from=yesterday&reason=nonsense&kiosk=abc")
    assert resp.status == 200 and 'data-field="from"' in await resp.text()


async def test_scan_log_pages_by_keyset_without_repeats(client):
    kiosk = await enrol_kiosk(client)
    made = [(await redeem(client, kiosk, f"BROKEN-{i}"))["scan_id"] for i in range(57)]
    await login(client, "supervisor", language="en")
    first, next_url = await _log(client, "?reason=malformed")
    assert len(first) == 50 and next_url
    second, last_url = await _log(client, next_url.removeprefix("/gate/scans"))
    assert len(second) == 7 and not last_url
    assert [r[0] for r in first + second] == list(reversed(made))


async def test_kiosk_list_shows_health(client):
    app = client.server.app
    kiosk = await enrol_kiosk(client, "Puerta Salud")
    await make_tickets(app, 3)
    await login(client, "supervisor", language="en")
    page = await (await client.get("/gate/kiosks")).text()
    row = re.search(rf'<tr data-kiosk="{kiosk["kiosk_id"]}"[^>]*>(.*?)</tr>', page, re.S)[1]
    lag_before = int(re.search(r'<td class="sync-lag"[^>]*>(\d+)</td>', row)[1])
    assert lag_before > 0  # it has not synced the new tickets yet
    cursor = 0
    while True:
        body = await (await client.get(f"/api/v1/gate/sync?cursor={cursor}", headers=kiosk["headers"])).json()
        cursor = body["cursor"]
        if not body["has_more"]:
            break
    page = await (await client.get("/gate/kiosks")).text()
    row = re.search(rf'<tr data-kiosk="{kiosk["kiosk_id"]}"[^>]*>(.*?)</tr>', page, re.S)[1]
    assert re.search(r'<td class="sync-lag"[^>]*>0</td>', row) and "Online" in row


async def test_a_code_finds_every_scan_of_its_ticket_online_offline_used_or_refused(client):
    from tests.gate_support import scan

    app = client.server.app
    north, south = await enrol_kiosk(client, "Puerta Norte"), await enrol_kiosk(client, "Puerta Sur")
    used_offline, used_online = await make_tickets(app, 2)

    async def upload(kiosk, code):
        item = {**scan(code), "accepted": True, "reason": "accepted"}
        resp = await client.post("/api/v1/gate/scans", json={"scans": [item]}, headers=kiosk["headers"])
        assert resp.status == 200, await resp.text()
        return item["scan_id"]

    # The truck passed while the kiosk was offline; it uploads the code in the form its camera read.
    offline_use = await upload(south, decimal_form(used_offline["code"]))
    refused_after = (await redeem(client, north, used_offline["code"]))["scan_id"]
    online_use = (await redeem(client, north, used_online["code"]))["scan_id"]
    late_double = await upload(south, used_online["code"])  # a conflict: both kiosks let it through

    await login(client, "supervisor", language="en")
    rows, _ = await _log(client, f"?code={used_offline['short_code']}")
    assert {r[0] for r in rows} == {offline_use, refused_after}
    rows, _ = await _log(client, f"?code={used_online['code']}")
    assert {r[0] for r in rows} == {online_use, late_double}
    rows, _ = await _log(client, f"?code={used_online['code']}&kiosk={north['kiosk_id']}&accepted=1")
    assert [r[0] for r in rows] == [online_use]


async def test_a_kiosk_that_cannot_save_scans_is_flagged_in_the_kiosk_list(client, config):
    app = client.server.app
    kiosk = await enrol_kiosk(client, "Puerta Disco")
    await login(client, "supervisor", language="en")

    async def flagged() -> bool:
        page = await (await client.get("/gate/kiosks")).text()
        row = re.search(rf'<tr data-kiosk="{kiosk["kiosk_id"]}"[^>]*>(.*?)</tr>', page, re.S)[1]
        return "storage-fault" in row and "Cannot save scans" in row

    assert not await flagged()
    for storage, expected in (("fault", True), ("ok", False), ("fault", True)):
        headers = {**kiosk["headers"], "X-Kiosk-Storage": storage}
        assert (await client.get("/api/v1/gate/me", headers=headers)).status == 200
        assert await flagged() is expected
    await app[KIOSKS].flush()  # saved with its liveness: the other workers' lists show it too
    assert db_rows(config, "SELECT storage_fault FROM kiosks WHERE id = ?", (kiosk["kiosk_id"],)) == [(1,)]
    assert await flagged()
