"""An online redeem checks its kiosk's token in its own transaction (PostgreSQL, several nodes).

A node does not read a known kiosk's row before each redeem (half a redeem's server CPU): the
redeem's transaction checks the kiosk is active and the token still its own, as committed. So a
revocation, or a new enrolment that replaced the token, made by another node whose announcement
has not arrived (here: written to the database directly, with no announcement at all) refuses
the kiosk's very next redeem, which records nothing.
"""

from __future__ import annotations

import pytest

from server.app import create_app
from server.demo import install_demo
from tests.dbaccess import db_rows
from tests.gate_support import enrol_kiosk, make_tickets, redeem, scan

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


async def _kiosk_known_to_a_node(config, aiohttp_client):  # noqa: ANN001, ANN202
    app = create_app(config)
    app.on_startup.append(install_demo)
    node = await aiohttp_client(app)
    kiosk = await enrol_kiosk(node, "Puerta 1")
    first, second = await make_tickets(app, 2)
    assert (await redeem(node, kiosk, first["code"]))["accepted"]  # the node now knows the kiosk
    return node, kiosk, second


def _uses_of(config, ticket_id: int) -> list[tuple]:  # noqa: ANN001
    return db_rows(config, "SELECT COUNT(*) FROM ticket_uses WHERE ticket_id = ?", (ticket_id,))


async def test_a_revocation_no_node_announced_refuses_the_next_redeem(config, aiohttp_client):
    node, kiosk, ticket = await _kiosk_known_to_a_node(config, aiohttp_client)
    db_rows(config, "UPDATE kiosks SET status = 'revoked' WHERE id = ?", (kiosk["kiosk_id"],))

    resp = await node.post("/api/v1/gate/redeem", json=scan(ticket["code"]), headers=kiosk["headers"])
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "revoked_kiosk"
    assert _uses_of(config, ticket["id"]) == [(0,)]
    assert db_rows(config, "SELECT COUNT(*) FROM scans WHERE code = ?", (ticket["code"],)) == [(0,)]
    resp = await node.get("/api/v1/gate/me", headers=kiosk["headers"])  # and the node now knows
    assert resp.status == 403


async def test_a_token_replaced_by_an_enrolment_elsewhere_is_refused_at_the_next_redeem(config, aiohttp_client):
    node, kiosk, ticket = await _kiosk_known_to_a_node(config, aiohttp_client)
    db_rows(config, "UPDATE kiosks SET token_hash = ? WHERE id = ?", ("0" * 64, kiosk["kiosk_id"]))

    resp = await node.post("/api/v1/gate/redeem", json=scan(ticket["code"]), headers=kiosk["headers"])
    assert resp.status == 401
    assert _uses_of(config, ticket["id"]) == [(0,)]
    resp = await node.get("/api/v1/gate/me", headers=kiosk["headers"])
    assert resp.status == 401
