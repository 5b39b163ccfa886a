"""The gate as it runs: a real server process, real agent processes, printed tickets through the
camera pipeline, the server stopped and restarted, an agent killed with -9."""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path

import pytest

from tests.stack import AgentProcess, KioskScreen, PortalUser, ServerProcess, wait_until

pytestmark = [pytest.mark.timeout(180)]


@pytest.fixture
async def server(tmp_path, database_url):
    proc = ServerProcess(tmp_path / "server", database_url=database_url).start()
    yield proc
    proc.stop()


async def enrolled_agent(server: ServerProcess, tmp_path: Path, name: str, scanners=None, **settings) -> AgentProcess:
    supervisor = PortalUser(server.url)
    try:
        await supervisor.login("supervisor")
        code = await supervisor.create_kiosk(name)
    finally:
        await supervisor.close()
    agent = AgentProcess(server.url, tmp_path / name, scanners, **settings)
    result = await asyncio.to_thread(agent.enrol, code)
    assert result.returncode == 0, result.stderr
    return agent


async def printed_ticket_image(server: ServerProcess, tmp_path: Path) -> tuple[int, Path, str]:
    """As customer Andina: print a not-yet-printed ticket, rasterise the PDF like a photo of the print."""
    customer = PortalUser(server.url)
    try:
        await customer.login("andina", company="Exportadora Andina S.A.")
        page = await (await customer.session.get("/tickets")).text()
        itinerary = re.search(r"/tickets/itinerary/(\d+)", page)[1]
        page = await (await customer.session.get(f"/tickets/itinerary/{itinerary}")).text()
        ticket_id = int(re.search(r'data-ticket="(\d+)" data-printed="0"', page)[1])
        resp = await customer.post(f"/tickets/{ticket_id}/print")
        assert resp.content_type == "application/pdf"
        pdf = tmp_path / f"ticket-{ticket_id}.pdf"
        pdf.write_bytes(await resp.read())
    finally:
        await customer.close()
    images = tmp_path / f"print-{ticket_id}"
    images.mkdir()
    subprocess.run(["pdftoppm", "-r", "110", "-png", str(pdf), str(images / "page")], check=True)
    short = server.db_rows("SELECT short_code FROM tickets WHERE id = ?", (ticket_id,))[0][0]
    return ticket_id, images, short


async def test_printed_ticket_through_camera_then_refused_again_and_at_a_second_kiosk(server, tmp_path):
    ticket_id, images, _short = await printed_ticket_image(server, tmp_path)
    camera = [{"type": "replay", "source": str(images), "interval_s": 1.5, "loop": True}]
    gate1 = await enrolled_agent(server, tmp_path, "Garita-Norte-1", camera, dedupe_seconds=1.0)
    gate1.start()
    try:
        async with KioskScreen(gate1) as screen:
            first = await screen.next_verdict(timeout=20)
            assert first["accepted"] and first["reason"] == "accepted" and first["ticket_id"] == ticket_id
            assert first["company"] == "Exportadora Andina S.A." and first["mode"] == "online"
            again = await screen.next_verdict(timeout=20)
            assert not again["accepted"] and again["reason"] == "already_used"
            assert again["used_where"] == "Garita-Norte-1"
    finally:
        gate1.stop()
    gate2 = await enrolled_agent(server, tmp_path, "Garita-Sur-2", camera, dedupe_seconds=1.0)
    gate2.start()
    try:
        async with KioskScreen(gate2) as screen:
            verdict = await screen.next_verdict(timeout=20)
            assert not verdict["accepted"] and verdict["reason"] == "already_used"
            assert verdict["used_where"] == "Garita-Norte-1"
    finally:
        gate2.stop()
    assert server.db_rows("SELECT COUNT(*) FROM ticket_uses WHERE ticket_id = ?", (ticket_id,)) == [(1,)]
    # The journal says what happened, not the scheduler's every upload run (two lines every two seconds).
    log = gate1.log.read_text()
    assert "kiosk screen on" in log and "apscheduler" not in log


async def test_server_down_kiosks_decide_and_offline_scans_arrive_once_with_one_conflict(server, tmp_path):
    ticket_id, _images, short = await printed_ticket_image(server, tmp_path)
    gate1 = await enrolled_agent(server, tmp_path, "Garita-A", upload_interval_s=0.5)
    gate2 = await enrolled_agent(server, tmp_path, "Garita-B", upload_interval_s=0.5)
    gate1.start()
    gate2.start()
    try:
        async with KioskScreen(gate1) as s1, KioskScreen(gate2) as s2:
            await s1.wait_status(lambda s: s["online"])
            await s2.wait_status(lambda s: s["online"])
            server.stop()
            await s1.wait_status(lambda s: not s["online"])
            # Both kiosks accept the same printed ticket (typed short code) while the server is down.
            await s1.type_code(short)
            v1 = await s1.next_verdict()
            await s2.type_code(short)
            v2 = await s2.next_verdict()
            assert v1["accepted"] and v1["mode"] == "offline"
            assert v2["accepted"] and v2["mode"] == "offline"
            # A forged code is refused offline too, from the signature alone.
            await s1.type_code("PG1" + "A" * 120)
            forged = await s1.next_verdict()
            assert forged["reason"] == "forged"
            assert len([r for r in gate1.outbox() if r[3] is None]) == 2
            server.start()
            await wait_until(lambda: all(r[3] is not None for r in gate1.outbox() + gate2.outbox()), timeout=40)
    finally:
        gate1.stop()
        gate2.stop()
    scan_ids = [r[0] for r in gate1.outbox() + gate2.outbox()]
    rows = server.db_rows(
        f"SELECT scan_id FROM scans WHERE scan_id IN ({','.join('?' * len(scan_ids))})", tuple(scan_ids)
    )
    assert sorted(r[0] for r in rows) == sorted(scan_ids)  # each offline scan arrived exactly once
    assert server.db_rows("SELECT COUNT(*) FROM ticket_uses WHERE ticket_id = ?", (ticket_id,)) == [(1,)]
    conflicts = server.db_rows("SELECT kind FROM conflicts WHERE ticket_id = ?", (ticket_id,))
    assert conflicts == [("double_accept",)]


async def test_kill_9_with_scans_in_the_outbox_loses_and_doubles_nothing(server, tmp_path):
    _ticket_id, _images, short = await printed_ticket_image(server, tmp_path)
    gate = await enrolled_agent(server, tmp_path, "Garita-K", upload_interval_s=0.5)
    gate.start()
    async with KioskScreen(gate) as screen:
        await screen.wait_status(lambda s: s["online"])
        server.stop()
        await screen.wait_status(lambda s: not s["online"])
        for code in (short, "99999999999999999999", "PG1BROKEN"):
            await screen.type_code(code)
            await screen.next_verdict()
    gate.kill9()
    pending = [r[0] for r in gate.outbox() if r[3] is None]
    assert len(pending) == 3
    server.start()
    gate.start()
    try:
        await wait_until(lambda: all(r[3] is not None for r in gate.outbox()), timeout=40)
    finally:
        gate.stop()
    rows = server.db_rows(
        f"SELECT scan_id, COUNT(*) FROM scans WHERE scan_id IN ({','.join('?' * 3)}) GROUP BY scan_id", tuple(pending)
    )
    assert sorted(rows) == sorted((scan_id, 1) for scan_id in pending)


async def test_deleted_ticket_is_refused_at_the_kiosk_within_5_seconds(server, tmp_path):
    gate = await enrolled_agent(server, tmp_path, "Garita-D", sync_interval_s=600)
    gate.start()
    customer = PortalUser(server.url)
    try:
        await customer.login("andina", company="Exportadora Andina S.A.")
        row = server.db_rows(
            "SELECT t.id, t.short_code FROM tickets t JOIN companies c ON c.id = t.company_id "
            "WHERE c.tax_id = '0991234567001' AND t.printed_at IS NOT NULL AND t.used_at IS NULL "
            "AND t.deleted_at IS NULL ORDER BY t.id DESC LIMIT 1"
        )[0]
        async with KioskScreen(gate) as screen:
            await screen.wait_status(lambda s: s["online"])
            resp = await customer.post(f"/tickets/{row[0]}/delete")
            assert resp.status == 200
            deleted_at = asyncio.get_running_loop().time()
            # The kiosk's own cache must say "deleted" even without the server: the live push arrived.
            await wait_until(lambda: gate_cache_deleted(gate, row[0]), timeout=5)
            assert asyncio.get_running_loop().time() - deleted_at < 5
            await screen.type_code(row[1])
            verdict = await screen.next_verdict()
            assert verdict["reason"] == "deleted" and not verdict["accepted"]
    finally:
        await customer.close()
        gate.stop()


def gate_cache_deleted(agent: AgentProcess, ticket_id: int) -> bool:
    import sqlite3

    with sqlite3.connect(agent.data_dir / "agent.db", timeout=5) as conn:
        row = conn.execute("SELECT deleted FROM tickets WHERE id = ?", (ticket_id,)).fetchone()
    return bool(row and row[0])


async def test_serial_reader_through_a_pty_reaches_the_kiosk_screen(server, tmp_path):
    import os

    _ticket_id, _images, short = await printed_ticket_image(server, tmp_path)
    master, slave = os.openpty()
    link = tmp_path / "ttyGATE"
    link.symlink_to(os.ttyname(slave))
    gate = await enrolled_agent(server, tmp_path, "Garita-S", [{"type": "serial", "source": str(link), "suffix": "CR"}])
    gate.start()
    try:
        async with KioskScreen(gate) as screen:
            await screen.wait_status(lambda s: s["online"])
            await asyncio.sleep(0.5)  # the reader opens the port
            os.write(master, short.encode() + b"\r")
            verdict = await screen.next_verdict()
            assert verdict["accepted"] and verdict["source"].startswith("serial")
            os.write(master, b"12345678901234567890\r")
            unknown = await screen.next_verdict()
            assert unknown["reason"] == "unknown"
    finally:
        gate.stop()
        os.close(master)
        os.close(slave)


async def revoke_on_the_portal(server, supervisor, screen, name: str) -> dict:  # noqa: ANN001
    """The gate supervisor revokes kiosk ``name`` on the portal; the lane's status once the agent says revoked."""
    kiosk_id = server.db_rows("SELECT id FROM kiosks WHERE name = ?", (name,))[0][0]
    assert (await supervisor.post(f"/gate/kiosks/{kiosk_id}/revoke")).status == 200
    return await screen.wait_status(lambda s: s["revoked"], timeout=10)


async def test_a_revoked_kiosk_enrolled_again_while_its_agent_runs_carries_on(server, tmp_path):
    """The box of a revoked kiosk gets a new enrolment while its agent keeps running (the operator did not stop
    it): the agent's next refusal must not write "revoked" over the new enrolment; it takes the new token."""
    gate = await enrolled_agent(server, tmp_path, "Garita-Old", sync_interval_s=1)
    gate.start()
    supervisor = PortalUser(server.url)
    try:
        await supervisor.login("supervisor")
        async with KioskScreen(gate) as screen:
            await screen.wait_status(lambda s: s["online"])
            await revoke_on_the_portal(server, supervisor, screen, "Garita-Old")
            code = await supervisor.create_kiosk("Garita-New")
            result = await asyncio.to_thread(gate.enrol, code)
            assert result.returncode == 0, result.stderr
            status = await screen.wait_status(lambda s: s["online"] and not s["revoked"], timeout=15)
            assert status["kiosk"] == "Garita-New"
        gate.stop()  # and after a restart, still the new kiosk: nothing wrote "revoked" over it
        gate.start()
        async with KioskScreen(gate) as screen:
            status = await screen.wait_status(lambda s: s["online"], timeout=15)
            assert not status["revoked"]
    finally:
        await supervisor.close()
        gate.stop()


async def test_revoked_kiosk_is_cut_off(server, tmp_path):
    gate = await enrolled_agent(server, tmp_path, "Garita-R")
    gate.start()
    supervisor = PortalUser(server.url)
    try:
        await supervisor.login("supervisor")
        async with KioskScreen(gate) as screen:
            await screen.wait_status(lambda s: s["online"])
            status = await revoke_on_the_portal(server, supervisor, screen, "Garita-R")
            assert not status["online"]
            await screen.type_code("12345678901234567890")
            verdict = await screen.next_verdict()
            assert verdict["reason"] == "revoked_kiosk"
    finally:
        await supervisor.close()
        gate.stop()
