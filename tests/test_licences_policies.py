"""Policies (pólizas): list with filter and search, detail, count per serial, isolation between companies."""

from __future__ import annotations

import re

from tests.helpdesk_support import ANDINA, ANDINA_PORTAL_SERIAL, PACIFICO_SERIAL, new_serial, policy_of, token_as
from tests.helpers import login


async def test_policy_list_detail_filter_search_and_count_per_serial(client, config):
    admin = await token_as(client, "admin")
    andina = await token_as(client, "andina", "customer_admin")
    # A renewal: a second policy on Andina's portal serial.
    portal = next(
        s
        for s in (await (await client.get("/api/v1/licences", headers=andina)).json())["serials"]
        if s["serial"] == ANDINA_PORTAL_SERIAL
    )
    resp = await client.post(
        "/api/v1/policies",
        json={
            "number": "POL-RENEW-1",
            "serial_id": portal["id"],
            "description": "Renovación",
            "registered_on": "2025-01-01",
            "valid_until": "2025-12-31",
        },
        headers=admin,
    )
    assert resp.status == 201
    listed = (await (await client.get("/api/v1/policies", headers=andina)).json())["policies"]
    on_portal = [p for p in listed if p["serial"] == ANDINA_PORTAL_SERIAL]
    assert len(on_portal) == 2 and {p["serial_policy_count"] for p in on_portal} == {2}
    assert PACIFICO_SERIAL not in {p["serial"] for p in listed}
    assert all(set(p) >= {"number", "system", "description", "registered_on", "valid_until", "serial"} for p in listed)
    mobile = (await (await client.get("/api/v1/policies?system=Portgate+Mobile", headers=andina)).json())["policies"]
    assert {p["system"] for p in mobile} == {"Portgate Mobile"}
    found = (await (await client.get("/api/v1/policies?q=RENEW", headers=andina)).json())["policies"]
    assert [p["number"] for p in found] == ["POL-RENEW-1"]
    current = (await (await client.get("/api/v1/policies?current=1", headers=andina)).json())["policies"]
    assert "POL-RENEW-1" not in {p["number"] for p in current}  # expired last year

    await login(client, "andina", language="en", profile="Exportadora Andina S.A.")
    page = await (await client.get("/policies?q=RENEW")).text()
    assert len(re.findall(r"<tr data-policy=", page)) == 1
    policy_id = re.search(r'<tr data-policy="(\d+)"', page)[1]
    detail = await (await client.get(f"/policies/{policy_id}")).text()
    assert "POL-RENEW-1" in detail and ANDINA_PORTAL_SERIAL in detail and "Renovación" in detail
    serial_page = await (await client.get(f"/licences/{portal['id']}")).text()
    assert re.search(r'/policies\?q=[^"]+">2</a>', serial_page)


async def test_a_company_cannot_read_another_companys_policies(client, config):
    pacifico_policy = policy_of(config, PACIFICO_SERIAL)
    andina = await token_as(client, "andina", "customer_admin")
    assert (await client.get(f"/api/v1/policies/{pacifico_policy}", headers=andina)).status == 404
    await login(client, "andina", language="en", profile="Exportadora Andina S.A.")
    assert (await client.get(f"/policies/{pacifico_policy}")).status == 404
    assert (await client.get(f"/helpdesk/tickets/new?policy_id={pacifico_policy}")).status == 404
    admin = await token_as(client, "admin")
    serial = await new_serial(client, admin, config, ANDINA)
    assert (await client.get(f"/api/v1/policies/{serial['policy_id']}", headers=andina)).status == 200
