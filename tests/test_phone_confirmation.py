"""A phone typed twice is the same phone however it is spelled (spaces, dashes, brackets, a "+"):
the prospect's registration and a new service ticket take it, as the texted-code registration does.

Real app, SQLite and SMTP over loopback (the ``client`` fixture), through the JSON API.
"""

from __future__ import annotations

from tests.helpdesk_support import ANDINA, new_serial, open_ticket, token_as
from tests.helpers import api_error, api_human
from tests.test_accounts_api_more import PROSPECT


async def test_a_prospect_may_type_the_phone_with_dashes_in_both_fields(client):
    body = {**PROSPECT, "phone": "+593-99-111-2222", "phone_confirm": "+593-99-111-2222", **(await api_human(client))}
    resp = await client.post("/api/v1/registration/prospect", json=body)
    assert resp.status == 201, await resp.text()


async def test_a_ticket_takes_the_phone_written_two_ways_and_still_refuses_another_number(client, config):
    admin = await token_as(client, "admin")
    andina = await token_as(client, "andina", "customer")
    serial = await new_serial(client, admin, config, ANDINA)
    policy = serial["policy_id"]
    resp = await open_ticket(
        client, andina, policy, "x@andina.example", phone="+593 (99) 123-4567", phone_confirm="593991234567"
    )
    assert resp.status == 201, await resp.text()
    resp = await open_ticket(
        client, andina, policy, "y@andina.example", phone="+593-99-123-4567", phone_confirm="+593991234568"
    )
    assert list((await api_error(resp))["fields"]) == ["phone_confirm"]
