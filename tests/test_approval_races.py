"""Two staff deciding one registration at once, on two nodes, give one outcome, one mail and one audit entry.

PostgreSQL only: on SQLite one process runs the writes one at a time, so the race cannot happen.
Two apps on one database, as two nodes behind a balancer. A third transaction holds the account's
row while both decisions are sent, so both have read it as pending before either writes: without
a lock on that read, both went on to write, each mailed its own verdict, and the account ended
with whichever came last.
"""

from __future__ import annotations

import asyncio

import pytest

from server.app import create_app
from tests.dbaccess import db_rows, row_held, until_lock_waiters
from tests.helpdesk_support import token_as
from tests.mailbox import wait_for_outbox
from tests.test_user_admin_approvals import register

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


async def _decide_on_two_nodes(config, aiohttp_client, client, first: str, second: str):  # noqa: ANN001, ANN202
    """Register someone, then send decision ``first`` through node A and ``second`` through node B at once."""
    node_b = await aiohttp_client(create_app(config))
    pending = await register(client, "rosa", "rosa@andina.example")
    admin_a, admin_b = await token_as(client, "admin"), await token_as(node_b, "admin")
    url = f"/api/v1/admin/registrations/{pending}"
    with row_held(config, "users", pending):
        decisions = [
            asyncio.ensure_future(client.post(f"{url}/{first}", json={}, headers=admin_a)),
            asyncio.ensure_future(node_b.post(f"{url}/{second}", json={}, headers=admin_b)),
        ]
        await until_lock_waiters(config, 2, decisions, "the two decisions did not both wait for the account")
    return pending, await asyncio.gather(*decisions)


@pytest.mark.parametrize(("first", "second"), [("approve", "approve"), ("approve", "reject")])
async def test_two_nodes_deciding_one_registration_at_once_give_one_outcome_one_mail_and_one_audit_entry(
    client, config, smtp, aiohttp_client, first, second
):
    pending, answers = await _decide_on_two_nodes(config, aiohttp_client, client, first, second)

    statuses = sorted(answer.status for answer in answers)
    assert statuses == [200, 404], [await answer.text() for answer in answers]
    winner = first if answers[0].status == 200 else second
    expected = "active" if winner == "approve" else "rejected"
    assert db_rows(config, "SELECT status FROM users WHERE id = ?", (pending,)) == [(expected,)]
    decided = db_rows(
        config,
        "SELECT event FROM audit_log WHERE user_id = ? AND event IN ('user.active', 'user.rejected')",
        (pending,),
    )
    assert decided == [(f"user.{expected}",)]
    # Every mail queued has gone out: the registrant got the receipt and exactly one verdict.
    await wait_for_outbox(config, lambda rows: not rows, "every mail delivered")
    smtp.wait_for("rosa@andina.example", "aprob")
    verdicts = [m for m in smtp.to("rosa@andina.example") if "aprob" in str(m["Subject"])]
    assert len(verdicts) == 1, [str(m["Subject"]) for m in verdicts]
