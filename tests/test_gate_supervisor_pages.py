"""The supervisor's pages at port scale and in everyday use: kiosk lists paged by keyset with filters,
a confirmation before revoking, and every form post answered by a redirect whose result shows once."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest

from server.gate import kiosks
from server.web import DB
from tests.gate_support import enrol_kiosk, make_tickets, now, scan
from tests.helpers import alert_text, db_rows, get_form, login

KIOSK_ROW = re.compile(r'<tr data-kiosk="(\d+)" data-status="(\w+)"')


def _title(page: str) -> str:
    return html.unescape(re.search(r"<title>([^<]*)</title>", page)[1])


async def _kiosk_page(client, query: str = "") -> tuple[list[str], str]:
    resp = await client.get(f"/gate/kiosks{query}")
    assert resp.status == 200, await resp.text()
    page = await resp.text()
    found = re.search(r'<a href="([^"]+)" id="next-page">', page)
    return [m[0] for m in KIOSK_ROW.findall(page)], html.unescape(found[1]) if found else ""


async def test_the_kiosk_list_pages_by_keyset_with_filters_and_no_cap(client):
    app = client.server.app
    for i in range(55):
        await app[DB].write(kiosks.create_kiosk, {"name": f"Garita {i:03d}", "gate": "Sur"}, None, now())
    revoked = await enrol_kiosk(client, "Garita 000 bis")
    await app[DB].write(kiosks.revoke_kiosk, revoked["kiosk_id"], None, now())
    await login(client, "supervisor", language="en")

    first, next_url = await _kiosk_page(client)
    assert len(first) == 50 and next_url
    # A kiosk added meanwhile before the cursor neither repeats nor hides a row of the next page.
    await app[DB].write(kiosks.create_kiosk, {"name": "Garita 000 nueva", "gate": "Sur"}, None, now())
    second, last_url = await _kiosk_page(client, next_url.removeprefix("/gate/kiosks"))
    assert len(second) == 6 and not last_url and not set(first) & set(second)
    assert second[-1] == str(revoked["kiosk_id"])  # revoked kiosks come last

    pending, _ = await _kiosk_page(client, "?status=revoked")
    assert pending == [str(revoked["kiosk_id"])]
    found, _ = await _kiosk_page(client, "?q=garita%20054")
    assert len(found) == 1
    resp = await client.get("/gate/kiosks?status=gone&after=garbage")
    page = await resp.text()
    assert resp.status == 200 and 'data-field="status"' in page and 'data-field="after"' in page


async def test_revoking_asks_first_saying_what_will_happen_in_the_users_language(client, config):
    kiosk = await enrol_kiosk(client, "Puerta Baja")
    await login(client, "supervisor", language="es")
    page = await (await client.get("/gate/kiosks")).text()
    assert f'action="/gate/kiosks/{kiosk["kiosk_id"]}/revoke"' not in page  # no one-click revoke
    assert f'href="/gate/kiosks/{kiosk["kiosk_id"]}/revoke"' in page

    confirm = await (await client.get(f"/gate/kiosks/{kiosk['kiosk_id']}/revoke")).text()
    assert _title(confirm).startswith("Dar de baja el quiosco Puerta Baja")
    assert "Dar de baja es definitivo" in confirm and "licencia" in confirm
    assert db_rows(config, "SELECT status FROM kiosks") == [("active",)]  # looking changes nothing

    _page, hidden = await get_form(client, f"/gate/kiosks/{kiosk['kiosk_id']}/revoke")
    resp = await client.post(f"/gate/kiosks/{kiosk['kiosk_id']}/revoke", data=hidden, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/gate/kiosks"
    assert db_rows(config, "SELECT status FROM kiosks") == [("revoked",)]
    shown = await (await client.get("/gate/kiosks")).text()
    assert alert_text(shown).startswith("Quiosco Puerta Baja dado de baja")
    assert alert_text(await (await client.get("/gate/kiosks")).text()) == ""  # a refresh shows it no more


async def test_creating_a_kiosk_redirects_to_its_code_shown_once(client, config):
    await login(client, "supervisor", language="en")
    _page, hidden = await get_form(client, "/gate/kiosks")
    resp = await client.post("/gate/kiosks", data={**hidden, "name": "Garita Este"}, allow_redirects=False)
    (kiosk_id,) = db_rows(config, "SELECT id FROM kiosks WHERE name = 'Garita Este'")[0]
    assert resp.status == 303 and resp.headers["Location"] == f"/gate/kiosks/{kiosk_id}/enrol-code"

    page = await (await client.get(resp.headers["Location"])).text()
    code = re.search(r'id="enrol-code" data-kiosk="\d+">([^<]+)<', page)[1]
    assert _title(page).startswith("Enrolment code for Garita Este")
    assert "Garita Este created" in alert_text(page)
    again = await (await client.get(resp.headers["Location"])).text()  # Refresh: the code is gone
    assert 'id="enrol-code"' not in again and 'id="code-gone"' in again
    assert count_kiosks(config) == 1  # and nothing was created twice

    resp = await client.post(f"/gate/kiosks/{kiosk_id}/enrol-code", data=hidden, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == f"/gate/kiosks/{kiosk_id}/enrol-code"
    page = await (await client.get(resp.headers["Location"])).text()
    new_code = re.search(r'id="enrol-code" data-kiosk="\d+">([^<]+)<', page)[1]
    assert new_code != code and "previous one no longer works" in alert_text(page)
    assert (await client.post("/api/v1/gate/enrol", json={"enrol_code": code})).status == 403
    assert (await client.post("/api/v1/gate/enrol", json={"enrol_code": new_code})).status == 201


def count_kiosks(config) -> int:
    return db_rows(config, "SELECT COUNT(*) FROM kiosks")[0][0]


async def test_a_flash_cannot_be_planted_or_read_by_another_session(client):
    await login(client, "supervisor", language="en")
    client.session.cookie_jar.update_cookies({"pg_flash": "eyJtIjoiSGFja2VkIiwicCI6e319.0123456789abcdef"})
    page = await (await client.get("/gate/kiosks")).text()
    assert alert_text(page) == "" and "Hacked" not in page


async def test_resolving_a_conflict_redirects_with_the_result(client, config):
    app = client.server.app
    north = await enrol_kiosk(client, "Puerta Norte")
    south = await enrol_kiosk(client, "Puerta Sur")
    (ticket,) = await make_tickets(app, 1)
    for kiosk, code, minutes in ((north, ticket["code"], 9), (south, ticket["short_code"], 7)):
        item = {**scan(code, scanned_at=now() - timedelta(minutes=minutes)), "accepted": True, "reason": "accepted"}
        assert (await client.post("/api/v1/gate/scans", json={"scans": [item]}, headers=kiosk["headers"])).status == 200
    (conflict_id,) = db_rows(config, "SELECT id FROM conflicts")[0]
    await login(client, "supervisor", language="en")
    assert _title(await (await client.get("/gate/conflicts")).text()).startswith("Conflicts")
    _page, hidden = await get_form(client, "/gate/conflicts")
    resolve = f"/gate/conflicts/{conflict_id}/resolve"
    resp = await client.post(resolve, data={**hidden, "note": "Verificado."}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/gate/conflicts?status=resolved"
    page = await (await client.get(resp.headers["Location"])).text()
    assert alert_text(page) == f"Conflict {conflict_id} resolved."
    resp = await client.post(resolve, data={**hidden, "note": "Otra vez."})
    assert resp.status == 409 and "already resolved" in await resp.text()
    assert db_rows(config, "SELECT resolution FROM conflicts") == [("Verificado.",)]
    filtered = await (await client.get("/gate/conflicts?status=all&kind=overrode_refusal")).text()
    assert f'data-conflict="{conflict_id}"' not in filtered and "No records" in filtered


@pytest.mark.browser
@pytest.mark.timeout(180)
def test_in_a_browser_refresh_and_back_never_repeat_a_kiosk_action(new_page, live_server):
    from tests.test_browser_tickets_kiosk import log_in

    page = new_page()
    log_in(page, "supervisor")
    page.goto("/gate/kiosks")
    page.fill("#f-name", "Garita Navegador")
    page.click("form[action='/gate/kiosks'] button[type=submit]")
    code = page.locator("#enrol-code").inner_text().strip()
    assert code and "Garita Navegador" in page.title()
    page.reload()  # no "resend the form?" and no second kiosk: the code is simply not shown again
    assert page.locator("#enrol-code").count() == 0 and page.locator("#code-gone").count() == 1
    page.go_back()
    assert page.url.endswith("/gate/kiosks")

    page.goto("/gate/kiosks?q=Garita%20Navegador")
    page.click("a.revoke")
    assert "Dar de baja el quiosco Garita Navegador" in page.title()
    assert "definitivo" in page.locator("#revoke-consequences").inner_text()
    page.click("#confirm-revoke button[type=submit]")
    assert page.url.endswith("/gate/kiosks")
    assert "dado de baja" in page.locator(".alert-success").inner_text()
    page.reload()
    assert page.locator(".alert-success").count() == 0
    assert db_rows(live_server.db_url, "SELECT status FROM kiosks WHERE name = 'Garita Navegador'") == [("revoked",)]
