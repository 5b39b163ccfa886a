"""A kiosk whose link to the server drops briefly: it catches up from its cursor when the link
returns, before it trusts the live channel again (real server and agent processes, a real TCP
link in between that the test cuts)."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest

from tests.netproxy import CuttableLink
from tests.stack import AgentProcess, KioskScreen, PortalUser, ServerProcess, wait_until
from tests.test_agent_e2e import enrolled_agent, gate_cache_deleted

pytestmark = [pytest.mark.timeout(120)]


@pytest.fixture
async def server(tmp_path, database_url):
    proc = ServerProcess(tmp_path / "server", database_url=database_url).start()
    yield proc
    proc.stop()


def printed_unused_tickets(server: ServerProcess, n: int) -> list[tuple[int, str]]:
    return server.db_rows(
        "SELECT t.id, t.short_code FROM tickets t JOIN companies c ON c.id = t.company_id "
        "WHERE c.tax_id = '0991234567001' AND t.printed_at IS NOT NULL AND t.used_at IS NULL "
        "AND t.deleted_at IS NULL ORDER BY t.id DESC LIMIT ?",
        (n,),
    )


def cached_ticket(agent: AgentProcess, ticket_id: int) -> tuple | None:
    with sqlite3.connect(agent.data_dir / "agent.db", timeout=5) as conn:
        return conn.execute("SELECT deleted, seq FROM tickets WHERE id = ?", (ticket_id,)).fetchone()


async def test_a_ticket_deleted_while_the_link_was_down_is_refused_within_2_s_of_its_return(server, tmp_path):
    async with CuttableLink(server.port) as link:
        gate = await enrolled_agent(server, tmp_path, "Garita-Link", sync_interval_s=600)
        gate.server_url = link.url  # the kiosk reaches the server only through the link
        gate.start()
        customer = PortalUser(server.url)
        try:
            await customer.login("andina", company="Exportadora Andina S.A.")
            (ticket_id, short_code), (kept_id, _kept) = printed_unused_tickets(server, 2)
            async with KioskScreen(gate) as screen:
                await screen.wait_status(lambda s: s["online"])
                await wait_until(lambda: cached_ticket(gate, ticket_id) is not None, timeout=10)

                link.cut_link()
                await screen.wait_status(lambda s: not s["online"], timeout=10)
                resp = await customer.post(f"/tickets/{ticket_id}/delete")  # the portal is not behind the link
                assert resp.status == 200
                await asyncio.sleep(1.0)
                assert not gate_cache_deleted(gate, ticket_id)  # nothing could reach the kiosk

                link.restore()
                restored = time.monotonic()
                await wait_until(lambda: gate_cache_deleted(gate, ticket_id), timeout=5, interval=0.05)
                assert time.monotonic() - restored <= 2.0
                await screen.type_code(short_code)
                verdict = await screen.next_verdict()
                assert (verdict["accepted"], verdict["reason"]) == (False, "deleted")
                # The channel is trusted again afterwards: a later print or deletion still arrives live.
                await screen.wait_status(lambda s: s["online"], timeout=5)
                resp = await customer.post(f"/tickets/{kept_id}/delete")
                assert resp.status == 200
                await wait_until(lambda: gate_cache_deleted(gate, kept_id), timeout=5)
        finally:
            await customer.close()
            gate.stop()
