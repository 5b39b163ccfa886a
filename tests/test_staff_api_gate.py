"""The gate supervisor's JSON API: kiosks, the scan log and conflicts, as the pages allow and no further."""

from __future__ import annotations

import json
from datetime import timedelta

from aiohttp import WSMsgType

from server.gate.live import CLOSE_REVOKED
from server.openapi import API_DOCS
from tests.gate_support import api_token, enrol_kiosk, make_itinerary, make_tickets, now, redeem, scan
from tests.helpers import api_error, count, db_rows

ENROL = "/api/v1/gate/enrol"


async def _supervisor(client, username: str = "supervisor") -> dict[str, str]:
    return {"Authorization": f"Bearer {await api_token(client.server.app, username)}"}


async def _offline(client, kiosk, code: str, minutes_ago: int) -> None:
    item = {**scan(code, scanned_at=now() - timedelta(minutes=minutes_ago)), "accepted": True, "reason": "accepted"}
    resp = await client.post("/api/v1/gate/scans", json={"scans": [item]}, headers=kiosk["headers"])
    assert resp.status == 200, await resp.text()


async def test_a_kiosk_created_through_the_api_enrols_once_with_its_code(client):
    staff = await _supervisor(client)
    itinerary = await make_itinerary(client.server.app)
    resp = await client.post(
        "/api/v1/kiosks", json={"name": "Garita API", "gate": "Norte", "itineraries": [itinerary]}, headers=staff
    )
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    kiosk = created["kiosk"]
    assert kiosk["status"] == "pending" and kiosk["allowed_itineraries"] == [itinerary]
    assert kiosk["enrol_expires_at"] and not kiosk["online"]

    # A lost code is replaced: the old one stops working, the new one enrols.
    resp = await client.post(f"/api/v1/kiosks/{kiosk['id']}/enrol-code", headers=staff)
    assert resp.status == 200, await resp.text()
    renewed = (await resp.json())["enrol_code"]
    assert (await client.post(ENROL, json={"enrol_code": created["enrol_code"]})).status == 403
    resp = await client.post(ENROL, json={"enrol_code": renewed, "fingerprint": "pi-1"})
    assert resp.status == 201
    token = (await resp.json())["token"]
    assert (await client.get("/api/v1/gate/me", headers={"Authorization": f"Bearer {token}"})).status == 200

    shown = await (await client.get(f"/api/v1/kiosks/{kiosk['id']}", headers=staff)).json()
    assert shown["status"] == "active" and shown["fingerprint"] == "pi-1" and shown["online"]
    resp = await client.post(f"/api/v1/kiosks/{kiosk['id']}/enrol-code", headers=staff)
    assert resp.status == 409 and (await api_error(resp))["code"] == "not_pending"
    listed = await (await client.get("/api/v1/kiosks?q=garita%20api", headers=staff)).json()
    assert [k["id"] for k in listed["kiosks"]] == [kiosk["id"]] and listed["next"] is None


async def test_revoking_through_the_api_cuts_the_kiosk_off_and_closes_its_socket(client, config):
    kiosk = await enrol_kiosk(client, "Puerta API")
    staff = await _supervisor(client)
    async with client.ws_connect("/api/v1/gate/live", headers=kiosk["headers"]) as ws:
        assert json.loads((await ws.receive()).data)["type"] == "hello"
        resp = await client.post(f"/api/v1/kiosks/{kiosk['kiosk_id']}/revoke", headers=staff)
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["status"] == "revoked"
        closing = await ws.receive(timeout=2)
        assert closing.type == WSMsgType.CLOSE and closing.data == CLOSE_REVOKED
    for method, path in (("GET", "/api/v1/gate/sync"), ("POST", "/api/v1/gate/redeem")):
        resp = await client.request(method, path, headers=kiosk["headers"], json={})
        assert resp.status == 403 and (await api_error(resp))["code"] == "revoked_kiosk", path
    assert db_rows(config, "SELECT active FROM machines WHERE kiosk_id = ?", (kiosk["kiosk_id"],)) == [(0,)]
    again = await client.post(f"/api/v1/kiosks/{kiosk['kiosk_id']}/revoke", headers=staff)
    assert again.status == 200
    assert (await client.post("/api/v1/kiosks/999999/revoke", headers=staff)).status == 404


async def test_only_gate_supervisors_and_admins_may_use_it(client, config):
    kiosk = await enrol_kiosk(client)
    calls = [
        ("GET", "/api/v1/kiosks", None),
        ("POST", "/api/v1/kiosks", {"name": "Intrusa"}),
        ("GET", f"/api/v1/kiosks/{kiosk['kiosk_id']}", None),
        ("POST", f"/api/v1/kiosks/{kiosk['kiosk_id']}/revoke", None),
        ("GET", "/api/v1/scans", None),
        ("GET", "/api/v1/conflicts", None),
        ("POST", "/api/v1/conflicts/1/resolve", {"note": "x"}),
    ]
    for username in ("pacifico", "mesa", "facturacion"):
        headers = await _supervisor(client, username)
        for method, path, body in calls:
            resp = await client.request(method, path, json=body, headers=headers)
            assert resp.status == 403 and (await api_error(resp))["code"] == "forbidden", (username, path)
    for method, path, body in calls:
        resp = await client.request(method, path, json=body, headers=kiosk["headers"])
        assert resp.status == 401, path  # a kiosk's token is not a portal token
        assert (await client.request(method, path, json=body)).status == 401, path
    assert db_rows(config, "SELECT status FROM kiosks") == [("active",)] and count(config, "kiosks") == 1
    admin = await _supervisor(client, "admin")
    assert (await client.get("/api/v1/kiosks", headers=admin)).status == 200


async def test_bad_kiosk_input_is_refused_by_field_and_writes_nothing(client, config):
    staff = await _supervisor(client)
    itinerary = await make_itinerary(client.server.app)
    await client.post("/api/v1/kiosks", json={"name": "Puerta Uno"}, headers=staff)
    cases = [
        ({}, "name"),
        ({"name": "Puerta Uno"}, "name"),  # the name is taken
        ({"name": "x" * 61}, "name"),
        ({"name": "Puerta Dos", "itineraries": "1"}, "itineraries"),
        ({"name": "Puerta Dos", "itineraries": [itinerary, 1.5]}, "itineraries"),
        ({"name": "Puerta Dos", "itineraries": [True]}, "itineraries"),
        ({"name": "Puerta Dos", "itineraries": [999999]}, "itineraries"),
        ({"name": "Puerta Dos", "itineraries": list(range(1, 600))}, "itineraries"),
    ]
    for body, field in cases:
        resp = await client.post("/api/v1/kiosks", json=body, headers=staff)
        assert resp.status == 400, body
        assert field in (await api_error(resp))["fields"], body
    resp = await client.post("/api/v1/kiosks", data=b"[1, 2", headers=staff)
    assert resp.status == 400 and (await api_error(resp))["code"] == "invalid_json"
    assert db_rows(config, "SELECT name FROM kiosks") == [("Puerta Uno",)]


async def test_bad_filters_are_refused_naming_the_parameter(client):
    staff = await _supervisor(client)
    for path, field in (
        ("/api/v1/scans?accepted=maybe", "accepted"),
        ("/api/v1/scans?reason=nonsense", "reason"),
        ("/api/v1/scans?from=2026-13-01", "from"),
        ("/api/v1/scans?to=0001-01-01", "to"),
        ("/api/v1/scans?kiosk=abc", "kiosk"),
        ("/api/v1/scans?before=-1", "before"),
        ("/api/v1/scans?limit=0", "limit"),
        ("/api/v1/kiosks?status=gone", "status"),
        ("/api/v1/kiosks?after=not-a-cursor", "after"),
        ("/api/v1/kiosks?limit=201", "limit"),
        ("/api/v1/conflicts?status=later", "status"),
        ("/api/v1/conflicts?kind=odd", "kind"),
    ):
        resp = await client.get(path, headers=staff)
        assert resp.status == 400, path
        assert field in (await api_error(resp))["fields"], path
    for path in ("/api/v1/kiosks/0", "/api/v1/kiosks/99999999999999999999", "/api/v1/conflicts/12345"):
        resp = await client.get(path, headers=staff)
        assert resp.status == 404 and (await api_error(resp))["code"] == "not_found", path


async def test_the_scan_log_filters_and_pages_by_keyset(client):
    app = client.server.app
    north = await enrol_kiosk(client, "Puerta Norte")
    south = await enrol_kiosk(client, "Puerta Sur")
    first, second = await make_tickets(app, 2)
    used = await redeem(client, north, first["code"])
    again = await redeem(client, south, first["code"])
    other = await redeem(client, south, second["short_code"])
    broken = await redeem(client, north, "BROKEN-CODE-1")
    staff = await _supervisor(client)

    async def log(query: str) -> dict:
        resp = await client.get(f"/api/v1/scans{query}", headers=staff)
        assert resp.status == 200, await resp.text()
        return await resp.json()

    everything = await log("")
    assert [s["scan_id"] for s in everything["scans"]] == [
        broken["scan_id"],
        other["scan_id"],
        again["scan_id"],
        used["scan_id"],
    ]
    refused = (await log("?accepted=0&lang=es"))["scans"]
    assert {s["reason"] for s in refused} == {"already_used", "malformed"}
    assert all(s["reason_text"] and not s["accepted"] for s in refused)
    by_code = (await log(f"?code={first['short_code']}"))["scans"]
    assert [s["scan_id"] for s in by_code] == [again["scan_id"], used["scan_id"]]
    assert by_code[0]["kiosk_name"] == "Puerta Sur" and by_code[0]["company_name"]
    assert [s["scan_id"] for s in (await log(f"?kiosk={north['kiosk_id']}"))["scans"]] == [
        broken["scan_id"],
        used["scan_id"],
    ]
    today = now().date()
    assert len((await log(f"?from={today}&to={today}"))["scans"]) == 4
    assert (await log(f"?to={today - timedelta(days=1)}"))["scans"] == []

    page = await log("?limit=3")
    assert len(page["scans"]) == 3 and page["next_before"]
    later = await redeem(client, north, "BROKEN-CODE-2")  # a new scan does not shift the pages
    rest = await log(f"?limit=3&before={page['next_before']}")
    assert [s["scan_id"] for s in rest["scans"]] == [used["scan_id"]] and rest["next_before"] is None
    assert later["scan_id"] == (await log("?limit=1"))["scans"][0]["scan_id"]


async def test_conflicts_are_listed_and_resolved_with_a_note(client, config):
    app = client.server.app
    north = await enrol_kiosk(client, "Puerta Norte")
    south = await enrol_kiosk(client, "Puerta Sur")
    (ticket,) = await make_tickets(app, 1)
    await _offline(client, north, ticket["code"], minutes_ago=9)
    await _offline(client, south, ticket["short_code"], minutes_ago=7)
    staff = await _supervisor(client)

    listed = await (await client.get("/api/v1/conflicts", headers=staff)).json()
    (conflict,) = listed["conflicts"]
    assert conflict["kind"] == "double_accept" and conflict["ticket_id"] == ticket["id"]
    assert (conflict["first_kiosk"], conflict["second_kiosk"]) == ("Puerta Norte", "Puerta Sur")
    assert conflict["resolved_at"] is None and listed["next_before"] is None
    assert (await (await client.get("/api/v1/conflicts?kind=overrode_refusal", headers=staff)).json())[
        "conflicts"
    ] == []

    resolve = f"/api/v1/conflicts/{conflict['id']}/resolve"
    resp = await client.post(resolve, json={"note": "   "}, headers=staff)
    assert resp.status == 400 and "note" in (await api_error(resp))["fields"]
    assert db_rows(config, "SELECT resolved_at FROM conflicts") == [(None,)]
    resp = await client.post(resolve, json={"note": "Mismo camión, verificado por cámara."}, headers=staff)
    assert resp.status == 200, await resp.text()
    done = await resp.json()
    assert done["resolution"] == "Mismo camión, verificado por cámara." and done["resolved_by"] == "supervisor"
    resp = await client.post(resolve, json={"note": "otra vez"}, headers=staff)
    assert resp.status == 409 and (await api_error(resp))["code"] == "already_resolved"
    assert db_rows(config, "SELECT resolution FROM conflicts") == [("Mismo camión, verificado por cámara.",)]
    assert (await (await client.get("/api/v1/conflicts", headers=staff)).json())["conflicts"] == []
    resolved = await (await client.get("/api/v1/conflicts?status=resolved", headers=staff)).json()
    assert [c["id"] for c in resolved["conflicts"]] == [conflict["id"]]
    resp = await client.post("/api/v1/conflicts/99999/resolve", json={"note": "x"}, headers=staff)
    assert resp.status == 404


async def test_every_supervisor_operation_is_in_the_openapi_document(client):
    paths = client.server.app[API_DOCS].spec()["paths"]
    for path, method in (
        ("/api/v1/kiosks", "get"),
        ("/api/v1/kiosks", "post"),
        ("/api/v1/kiosks/{kiosk_id}", "get"),
        ("/api/v1/kiosks/{kiosk_id}/enrol-code", "post"),
        ("/api/v1/kiosks/{kiosk_id}/revoke", "post"),
        ("/api/v1/scans", "get"),
        ("/api/v1/conflicts", "get"),
        ("/api/v1/conflicts/{conflict_id}", "get"),
        ("/api/v1/conflicts/{conflict_id}/resolve", "post"),
    ):
        operation = paths[path][method]
        assert operation["tags"] == ["gate supervision"], path  # not "gate": kiosks' tokens do not reach it
        ok = next(iter(operation["responses"].values()))["content"]["application/json"]["schema"]
        assert ok["additionalProperties"] is False, path
