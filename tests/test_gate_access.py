"""Kiosk enrolment and revocation through the supervisor pages; who may call what."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from aiohttp import WSMsgType

from server.gate import kiosks
from server.gate.live import CLOSE_REVOKED
from server.openapi import API_DOCS
from server.web import DB
from tests.gate_support import api_token, enrol_kiosk, make_itinerary, now
from tests.helpers import db_rows, field_errors, get_form, login

ENROL = "/api/v1/gate/enrol"


async def _create_kiosk_on_page(client, name: str, **extra) -> str:
    _page, hidden = await get_form(client, "/gate/kiosks")
    resp = await client.post("/gate/kiosks", data={**hidden, "name": name, "gate": "Norte", **extra})
    assert resp.status == 200, await resp.text()
    assert resp.headers["Cache-Control"] == "no-store"
    return re.search(r'<code class="ticket" id="enrol-code" data-kiosk="\d+">([^<]+)</code>', await resp.text())[1]


async def test_enrolment_code_from_the_page_works_once(client, config):
    await login(client, "supervisor", language="en")
    code = await _create_kiosk_on_page(client, "Puerta Este")
    (stored,) = db_rows(config, "SELECT enrol_code_hash, status FROM kiosks WHERE name = 'Puerta Este'")
    assert code.replace("-", "") not in stored[0] and stored[1] == "pending"

    body = {"enrol_code": code.lower(), "fingerprint": "pi-serial-123", "agent_version": "1.0.0"}
    resp = await client.post(ENROL, json=body)
    assert resp.status == 201, await resp.text()
    answer = await resp.json()
    assert answer["name"] == "Puerta Este" and answer["token"].startswith("pgk_") and answer["server_time"]
    resp = await client.get("/api/v1/gate/time", headers={"Authorization": f"Bearer {answer['token']}"})
    assert resp.status == 200

    again = await client.post(ENROL, json=body)
    assert again.status == 403 and (await again.json())["error"]["code"] == "invalid_enrol_code"
    page = await (await client.get("/gate/kiosks")).text()
    assert re.search(r'data-status="active" data-online="1">\s*<td[^>]*>Puerta Este</td>', page)
    assert code not in page  # shown once, never again

    dup = await client.post("/gate/kiosks", data={**(await get_form(client, "/gate/kiosks"))[1], "name": "Puerta Este"})
    assert dup.status == 400 and "name" in field_errors(await dup.text())


async def test_a_new_enrolment_code_replaces_the_old_one(client):
    await login(client, "supervisor", language="en")
    old_code = await _create_kiosk_on_page(client, "Puerta Oeste")
    page, hidden = await get_form(client, "/gate/kiosks")
    kiosk_id = re.search(r'<tr data-kiosk="(\d+)" data-status="pending"', page)[1]
    resp = await client.post(f"/gate/kiosks/{kiosk_id}/enrol-code", data=hidden)
    new_code = re.search(r'id="enrol-code" data-kiosk="\d+">([^<]+)<', await resp.text())[1]
    assert new_code != old_code
    assert (await client.post(ENROL, json={"enrol_code": old_code})).status == 403
    assert (await client.post(ENROL, json={"enrol_code": new_code})).status == 201
    resp = await client.post(f"/gate/kiosks/{kiosk_id}/enrol-code", data=hidden)
    assert resp.status == 409  # enrolled: no more codes


async def test_expired_and_wrong_enrolment_codes_are_refused(client):
    app = client.server.app
    _id, code = await app[DB].write(
        kiosks.create_kiosk, {"name": "Vieja", "gate": ""}, None, now() - timedelta(hours=25)
    )
    resp = await client.post(ENROL, json={"enrol_code": code})
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "expired_enrol_code"
    resp = await client.post(ENROL, json={"enrol_code": "AAAA-BBBB-CCCC-DDDD"})
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "invalid_enrol_code"
    resp = await client.post(ENROL, json={})
    assert resp.status == 400 and "enrol_code" in (await resp.json())["error"]["fields"]


async def test_kiosk_restricted_to_itineraries_from_the_page(client, config):
    app = client.server.app
    itinerary = await make_itinerary(app)
    await login(client, "supervisor", language="en")
    code = await _create_kiosk_on_page(client, "Puerta Restringida", itineraries=str(itinerary))
    resp = await client.post(ENROL, json={"enrol_code": code})
    token = (await resp.json())["token"]
    me = await (await client.get("/api/v1/gate/me", headers={"Authorization": f"Bearer {token}"})).json()
    assert me["allowed_itineraries"] == [itinerary]


async def test_revoking_on_the_page_cuts_the_kiosk_off_and_closes_its_socket(client):
    kiosk = await enrol_kiosk(client, "Puerta Baja")
    await login(client, "supervisor", language="en")
    async with client.ws_connect("/api/v1/gate/live", headers=kiosk["headers"]) as ws:
        assert json.loads((await ws.receive()).data)["type"] == "hello"
        _page, hidden = await get_form(client, "/gate/kiosks")
        resp = await client.post(f"/gate/kiosks/{kiosk['kiosk_id']}/revoke", data=hidden)
        assert resp.status == 200 and resp.url.path == "/gate/kiosks"
        closing = await ws.receive(timeout=2)
        assert closing.type == WSMsgType.CLOSE and closing.data == CLOSE_REVOKED
    for method, path in (("GET", "/api/v1/gate/sync"), ("GET", "/api/v1/gate/keys"), ("POST", "/api/v1/gate/redeem")):
        resp = await client.request(method, path, headers=kiosk["headers"], json={})
        assert resp.status == 403, path
        assert (await resp.json())["error"]["code"] == "revoked_kiosk"
    resp = await client.get("/api/v1/gate/live", headers=kiosk["headers"])
    assert resp.status == 403


async def test_revoking_from_another_area_closes_the_socket_too(client):
    """The licence pages revoke a kiosk through the service and the token cache only."""
    app = client.server.app
    kiosk = await enrol_kiosk(client)
    async with client.ws_connect("/api/v1/gate/live", headers=kiosk["headers"]) as ws:
        assert json.loads((await ws.receive()).data)["type"] == "hello"
        await app[DB].write(kiosks.revoke_kiosk, kiosk["kiosk_id"], None, now())
        app[kiosks.KIOSKS].revoke(kiosk["kiosk_id"])
        closing = await ws.receive(timeout=2)
        assert closing.type == WSMsgType.CLOSE and closing.data == CLOSE_REVOKED


async def test_a_revoked_kiosk_unknown_to_the_cache_is_refused_from_the_database(client):
    """As after a restart: the token cache is empty, and the revocation is read from the database."""
    app = client.server.app
    kiosk = await enrol_kiosk(client)
    await app[DB].write(kiosks.revoke_kiosk, kiosk["kiosk_id"], None, now())
    resp = await client.get("/api/v1/gate/time", headers=kiosk["headers"])
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "revoked_kiosk"


async def test_customer_and_kiosk_tokens_stay_on_their_side(client):
    app = client.server.app
    kiosk = await enrol_kiosk(client)
    customer_token = await api_token(app, "pacifico")
    customer = {"Authorization": f"Bearer {customer_token}"}
    assert (await client.get("/api/v1/me", headers=customer)).status == 200
    for path in ("/api/v1/gate/time", "/api/v1/gate/keys", "/api/v1/gate/sync", "/api/v1/gate/me"):
        resp = await client.get(path, headers=customer)
        assert resp.status == 401, path
        assert (await resp.json())["error"]["code"] == "unauthorized"
    resp = await client.post("/api/v1/gate/redeem", json={}, headers=customer)
    assert resp.status == 401
    resp = await client.get("/api/v1/me", headers=kiosk["headers"])
    assert resp.status == 401
    resp = await client.get("/api/v1/gate/time")
    assert resp.status == 401


async def test_supervisor_pages_refuse_customers_and_ask_strangers_to_log_in(client):
    for path in ("/gate/kiosks", "/gate/scans", "/gate/conflicts"):
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"].startswith("/login"), path
    await login(client, "pacifico")
    for path in ("/gate/kiosks", "/gate/scans", "/gate/conflicts"):
        assert (await client.get(path)).status == 403, path
    _page, hidden = await get_form(client, "/home")
    assert (await client.post("/gate/kiosks", data={**hidden, "name": "Intrusa"})).status == 403
    home = await (await client.get("/home")).text()
    assert "/gate/kiosks" not in home


async def test_supervisor_and_admin_see_the_gate_menu(client):
    await login(client, "supervisor", language="en")
    home = await (await client.get("/home")).text()
    for href in ("/gate/kiosks", "/gate/scans", "/gate/conflicts"):
        assert f'href="{href}"' in home
    assert (await client.get("/gate/kiosks")).status == 200


async def test_every_gate_route_is_in_the_openapi_document(client):
    paths = client.server.app[API_DOCS].spec()["paths"]
    served = {
        (route.method.lower(), route.resource.canonical)
        for route in client.server.app.router.routes()
        if route.resource and route.resource.canonical.startswith("/api/v1/gate") and route.method != "HEAD"
    }
    assert served and all(path in paths and method in paths[path] for method, path in served), served
    resp = await client.get("/api/v1/openapi.json")
    assert "/api/v1/gate/redeem" in (await resp.json())["paths"]
