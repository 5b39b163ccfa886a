"""Gate agents are machines: a kiosk enrols by activating on the operator's licence serial."""

from __future__ import annotations

from datetime import date, timedelta

from server.gate import kiosks
from server.web import DB
from tests.gate_support import enrol_kiosk, now
from tests.helpdesk_support import TERMINAL, company_id, serial_id, token_as
from tests.helpers import api_error, db_rows, get_form, login

GATE_SERIAL = "A7E3C0DE-6A7E-4B1D-9000-0990000001001"


async def set_gate_serial(client, config, admin, **changes) -> None:
    """The administrator changes the operator's gate serial (limits, validity)."""
    body = {
        "company_id": company_id(config, TERMINAL),
        "serial": GATE_SERIAL,
        "system": "Portgate Gate",
        "description": "Portgate Gate: agentes de garita",
        "valid_until": (date.today() + timedelta(days=365)).isoformat(),
        "max_machines": 10,
        "max_open_tickets": 2,
        **changes,
    }
    resp = await client.put(f"/api/v1/licences/{serial_id(config, GATE_SERIAL)}", json=body, headers=admin)
    assert resp.status == 200, await resp.text()


async def try_enrol(client, name: str):
    """Create a kiosk as the supervisor would and try its enrolment code; returns (code, answer)."""
    _kiosk_id, code = await client.app[DB].write(kiosks.create_kiosk, {"name": name, "gate": "Sur"}, None, now())
    resp = await client.post(
        "/api/v1/gate/enrol", json={"enrol_code": code, "fingerprint": f"box-{name}", "agent_version": "test"}
    )
    return code, resp


async def test_an_enrolled_kiosk_is_a_machine_on_the_operators_serial(client, config):
    kiosk = await enrol_kiosk(client, "Garita Norte 1")
    rows = db_rows(
        config,
        "SELECT s.serial, m.name, m.fingerprint, m.active FROM machines m JOIN serials s ON s.id = m.serial_id "
        "WHERE m.kiosk_id = ?",
        (kiosk["kiosk_id"],),
    )
    assert rows == [(GATE_SERIAL, "Garita Norte 1", "test-box", 1)]
    supervisor = await token_as(client, "supervisor")
    serial = await (await client.get(f"/api/v1/licences/{serial_id(config, GATE_SERIAL)}", headers=supervisor)).json()
    assert serial["machines"]["active"] == 1 and serial["status"] == "valid"
    # The supervisor sees it among the serial's machines; customers do not see the operator's serial.
    await login(client, "supervisor", language="en")
    page = await (await client.get(f"/licences/{serial['id']}")).text()
    assert "Garita Norte 1" in page and "Gate kiosk" in page
    andina = await token_as(client, "andina", "customer_admin")
    assert (await client.get(f"/api/v1/licences/{serial['id']}", headers=andina)).status == 404


async def test_the_serials_machine_limit_refuses_one_more_kiosk_until_a_slot_frees(client, config):
    admin = await token_as(client, "admin")
    first = await enrol_kiosk(client, "Garita A")
    await enrol_kiosk(client, "Garita B")
    await set_gate_serial(client, config, admin, max_machines=2)
    code, resp = await try_enrol(client, "Garita C")
    assert resp.status == 403
    error = await api_error(resp)
    assert error["code"] == "machine_limit" and GATE_SERIAL in error["message"]
    assert db_rows(config, "SELECT status FROM kiosks WHERE name = 'Garita C'") == [("pending",)]

    # Deactivating Garita A in the portal frees the slot, and the refused code now works.
    machine = db_rows(config, "SELECT id, serial_id FROM machines WHERE kiosk_id = ?", (first["kiosk_id"],))[0]
    resp = await client.post(f"/api/v1/licences/{machine[1]}/machines/{machine[0]}/deactivate", headers=admin)
    assert resp.status == 200
    resp = await client.post("/api/v1/gate/enrol", json={"enrol_code": code, "fingerprint": "box-c"})
    assert resp.status == 201


async def test_deactivating_the_machine_in_the_portal_revokes_the_kiosk_at_once(client, config):
    kiosk = await enrol_kiosk(client, "Garita Revocable")
    assert (await client.get("/api/v1/gate/me", headers=kiosk["headers"])).status == 200  # token now cached
    machine, serial = db_rows(config, "SELECT id, serial_id FROM machines WHERE kiosk_id = ?", (kiosk["kiosk_id"],))[0]
    await login(client, "supervisor", language="en")
    _page, hidden = await get_form(client, f"/licences/{serial}")
    resp = await client.post(f"/licences/{serial}/machines/{machine}/deactivate", data=hidden)
    assert resp.status == 200 and f'data-machine="{machine}" data-active' not in await resp.text()
    resp = await client.get("/api/v1/gate/me", headers=kiosk["headers"])
    assert resp.status == 403 and (await api_error(resp))["code"] == "revoked_kiosk"
    assert db_rows(config, "SELECT status FROM kiosks WHERE id = ?", (kiosk["kiosk_id"],)) == [("revoked",)]
    # A kiosk is not switched back on from the licence page; it enrols again with a new code.
    supervisor = await token_as(client, "supervisor")
    resp = await client.post(f"/api/v1/licences/{serial}/machines/{machine}/activate", headers=supervisor)
    assert (await api_error(resp))["code"] == "kiosk_machine"


async def test_revoking_a_kiosk_at_the_gate_frees_its_machine(client, config):
    kiosk = await enrol_kiosk(client, "Garita Retirada")
    await login(client, "supervisor", language="en")
    _page, hidden = await get_form(client, "/gate/kiosks")
    resp = await client.post(f"/gate/kiosks/{kiosk['kiosk_id']}/revoke", data=hidden)
    assert resp.status in (200, 302)
    assert db_rows(config, "SELECT active FROM machines WHERE kiosk_id = ?", (kiosk["kiosk_id"],)) == [(0,)]


async def test_an_expired_serial_stops_new_enrolments_and_says_why(client, config):
    admin = await token_as(client, "admin")
    expired_on = date.today() - timedelta(days=2)
    await set_gate_serial(client, config, admin, valid_until=expired_on.isoformat())
    _code, resp = await try_enrol(client, "Garita Vencida")
    assert resp.status == 403
    error = await api_error(resp)
    assert error["code"] == "serial_expired"
    assert GATE_SERIAL in error["message"] and expired_on.isoformat() in error["message"]
    assert db_rows(config, "SELECT COUNT(*) FROM machines WHERE name = 'Garita Vencida'") == [(0,)]
    await set_gate_serial(client, config, admin, suspended=True)
    _code, resp = await try_enrol(client, "Garita Suspendida")
    assert (await api_error(resp))["code"] == "serial_suspended"
