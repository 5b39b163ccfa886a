"""Values that parse but cannot be stored or used (huge ids, times with no UTC, odd digits) are 4xx, not 500."""

from __future__ import annotations

from tests.gate_support import enrol_kiosk, make_tickets, scan
from tests.helpers import api_error, count, get_form, login


async def test_scan_times_with_no_utc_equivalent_are_refused_and_nothing_is_recorded(client, config):
    kiosk = await enrol_kiosk(client)
    (ticket,) = await make_tickets(client.server.app, 1)
    scans_before = count(config, "scans")
    for moment in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:00-01:00"):
        body = {**scan(ticket["code"]), "scanned_at": moment}
        resp = await client.post("/api/v1/gate/redeem", json=body, headers=kiosk["headers"])
        assert resp.status == 400 and "scanned_at" in (await api_error(resp))["fields"]
        upload = {
            "scans": [
                {**scan(ticket["code"]), "accepted": True, "reason": "accepted"},
                {**body, "accepted": False, "reason": "forged"},
            ]
        }
        resp = await client.post("/api/v1/gate/scans", json=upload, headers=kiosk["headers"])
        assert resp.status == 400 and "scans.1.scanned_at" in (await api_error(resp))["fields"]
    assert count(config, "scans") == scans_before  # the good scan of the refused upload was not kept either


async def test_an_infinite_pending_count_is_ignored(client):
    kiosk = await enrol_kiosk(client)
    resp = await client.post(
        "/api/v1/gate/scans",
        data=b'{"pending_uploads": 1e400, "scans": []}',
        headers={**kiosk["headers"], "Content-Type": "application/json"},
    )
    # The count is ignored; the request goes on to the usual check of its scans (an empty list).
    assert resp.status == 400 and set((await api_error(resp))["fields"]) == {"scans"}


async def test_ids_too_large_for_the_database_are_refused_as_not_in_the_list(client, config):
    await login(client, "supervisor", language="en")
    _page, hidden = await get_form(client, "/gate/kiosks")
    kiosks_before = count(config, "kiosks")
    resp = await client.post(
        "/gate/kiosks", data={**hidden, "name": "Puerta Enorme", "gate": "N", "itineraries": "99999999999999999999"}
    )
    assert resp.status == 400 and "Choose itineraries from the list." in await resp.text()
    assert count(config, "kiosks") == kiosks_before
    for query in ("before=%C2%B2", "before=99999999999999999999", "code=AAA%F4%8F%BF%BF"):
        for page in ("/gate/scans", "/gate/conflicts"):
            resp = await client.get(f"{page}?{query}")
            assert resp.status == 200, (page, query, resp.status)


async def test_a_service_id_too_large_for_the_database_is_refused(client, config):
    from tests.test_tickets_api import customer, open_itinerary

    headers = await customer(client, "pacifico")
    itinerary, _services = await open_itinerary(client, headers)
    tickets_before = count(config, "tickets")
    resp = await client.post(
        "/api/v1/tickets/generate",
        headers=headers,
        json={"quantity": 1, "itinerary_id": itinerary, "services": [99999999999999999999]},
    )
    assert resp.status == 400 and "services" in (await api_error(resp))["fields"]
    assert count(config, "tickets") == tickets_before


async def test_a_lone_surrogate_in_a_scanned_code_is_logged_without_it_and_never_blocks_the_outbox(client, config):
    """JSON can carry "\\ud800", which the database cannot store: it is cleaned like any text field."""
    kiosk = await enrol_kiosk(client)
    online = await client.post("/api/v1/gate/redeem", json=scan("ABC\ud800DEF"), headers=kiosk["headers"])
    assert online.status == 200 and (await online.json())["reason"] == "malformed"
    offline = {**scan("GHI\ud800"), "accepted": False, "reason": "malformed"}
    resp = await client.post("/api/v1/gate/scans", json={"scans": [offline]}, headers=kiosk["headers"])
    assert resp.status == 200 and (await resp.json())["results"][0]["outcome"] == "logged"
    assert count(config, "scans") == 2
    await login(client, "supervisor", language="en")
    for code in ("ABCDEF", "AAA\ud7ff", "AAA\ud800"):  # the prefix range's end skips the surrogates
        assert (await client.get("/gate/scans", params={"code": code})).status == 200
