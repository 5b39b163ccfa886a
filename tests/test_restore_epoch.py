"""Kiosks after ``portgate-server restore``: a kiosk that synced after the backup holds a cursor past
the restored database's counter, so without the sync epoch it would never hear of what changes on
the restored server, and would let through, offline, a ticket deleted there.

Real server processes (the live one, then one on the restored database, on the same port), a real
agent process, the real backup and restore commands; what is checked is what the gate crew sees on
the kiosk's screen with the server down, and what the restored server holds.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backup_support import command
from tests.stack import AgentProcess, KioskScreen, PortalUser, ServerProcess, wait_until

pytestmark = [pytest.mark.timeout(240)]

ANDINA = "Exportadora Andina S.A."


@pytest.fixture
def restored_target(request, database_url, tmp_path) -> Iterator[tuple[Path, str]]:
    """Where the restore goes: a new data folder, and on PostgreSQL a new empty database."""
    if not database_url:
        yield tmp_path / "restored", ""
        return
    cluster = request.getfixturevalue("pg_cluster")
    name = f"restored_{uuid.uuid4().hex[:8]}"
    yield tmp_path / "restored", cluster.create_database(name)
    cluster.drop_database(name)


def database_options(url: str) -> list[str]:
    return ["--database-url", url] if url else []


def andina_tickets(server: ServerProcess) -> tuple[list[tuple[int, str]], tuple[int, str]]:
    """(four printed tickets valid at the gate, one not printed yet) of Andina: (id, short code)."""
    rows = server.db_rows(
        "SELECT t.id, t.short_code, CASE WHEN t.printed_at IS NULL THEN 0 ELSE 1 END FROM tickets t "
        "JOIN companies c ON c.id = t.company_id WHERE c.name = ? AND t.deleted_at IS NULL "
        "AND t.used_at IS NULL ORDER BY t.id",
        (ANDINA,),
    )
    printed = [(r[0], r[1]) for r in rows if r[2]]
    unprinted = [(r[0], r[1]) for r in rows if not r[2]]
    assert len(printed) >= 4 and unprinted
    return printed[:4], unprinted[0]


async def as_andina(server: ServerProcess, *actions: tuple[str, int]) -> None:
    """The customer prints or deletes tickets in the portal: ("print" | "delete", ticket id)."""
    customer = PortalUser(server.url)
    try:
        await customer.login("andina", company=ANDINA)
        for action, ticket_id in actions:
            resp = await customer.post(f"/tickets/{ticket_id}/{action}")
            assert resp.status == 200, await resp.text()
            await resp.read()
    finally:
        await customer.close()


async def enrolled_agent(server: ServerProcess, folder: Path) -> AgentProcess:
    supervisor = PortalUser(server.url)
    try:
        await supervisor.login("supervisor")
        code = await supervisor.create_kiosk("Garita Restaurada")
    finally:
        await supervisor.close()
    agent = AgentProcess(server.url, folder, upload_interval_s=0.5, sync_interval_s=1)
    result = await asyncio.to_thread(agent.enrol, code)
    assert result.returncode == 0, result.stderr
    return agent


def kiosk_cache(agent: AgentProcess, sql: str, params: tuple = ()) -> list[tuple]:
    with sqlite3.connect(agent.data_dir / "agent.db", timeout=10) as conn:
        return conn.execute(sql, params).fetchall()


def cached_cursor(agent: AgentProcess) -> int:
    return int(kiosk_cache(agent, "SELECT value FROM meta WHERE key = 'cursor'")[0][0])


async def back_up_then_print_and_delete(
    live: ServerProcess, agent: AgentProcess, backup_file: Path, printed: int, deleted: int
) -> None:
    """The nightly backup, then (after it) a ticket printed and one deleted: the kiosk syncs them."""
    made = command(
        "backup", "--data-dir", str(live.data_dir), *database_options(live.database_url), "--to", str(backup_file)
    )
    assert made.returncode == 0, made.stderr
    await as_andina(live, ("print", printed), ("delete", deleted))
    counter = live.db_rows("SELECT value FROM sync_counter")[0][0]
    await wait_until(lambda: cached_cursor(agent) >= counter, timeout=30)


async def verdict(screen: KioskScreen, code: str) -> dict:
    await screen.type_code(code)
    return await screen.next_verdict(timeout=20)


async def test_after_a_restore_the_kiosk_syncs_again_and_refuses_offline_what_the_restored_server_deleted(
    tmp_path, database_url, restored_target
):
    live = ServerProcess(tmp_path / "live", database_url=database_url).start()
    agent = await enrolled_agent(live, tmp_path / "kiosk")
    (valid_then_deleted, deleted_after, scanned_offline, used), (printed_after, short_printed_after) = andina_tickets(
        live
    )
    backup_file = tmp_path / "nightly.tar"
    agent.start()
    try:
        async with KioskScreen(agent) as screen:
            await screen.wait_status(lambda s: s["online"], timeout=30)
            # After the backup: a ticket printed, one deleted, one used at this gate; the kiosk syncs them.
            await back_up_then_print_and_delete(live, agent, backup_file, printed_after, valid_then_deleted[0])
            assert (await verdict(screen, used[1]))["accepted"]
            assert kiosk_cache(agent, "SELECT deleted FROM tickets WHERE id = ?", (valid_then_deleted[0],)) == [(1,)]

            live.stop()
            await screen.wait_status(lambda s: not s["online"], timeout=30)
            offline_scan = await verdict(screen, scanned_offline[1])
            assert offline_scan["accepted"] and offline_scan["mode"] == "offline"
    finally:
        agent.stop()  # the box is off while the server is restored
        live.stop()
    offline_scan_id = agent.outbox()[-1][0]
    assert agent.outbox()[-1][3] is None  # not uploaded yet

    restored_dir, restored_url = restored_target
    result = command(
        "restore", "--data-dir", str(restored_dir), *database_options(restored_url), "--from", str(backup_file)
    )
    assert result.returncode == 0, result.stderr
    restored = ServerProcess(restored_dir, port=live.port, database_url=restored_url).start()
    try:
        await as_andina(restored, ("delete", deleted_after[0]))  # deleted on the restored server
        # The premise: the kiosk's cursor is past every number the restored server has handed out.
        assert restored.db_rows("SELECT value FROM sync_counter")[0][0] < cached_cursor(agent)
        agent.start()
        async with KioskScreen(agent) as screen:
            # The outbox goes after the first pull: once the offline scan is uploaded, the kiosk has synced.
            await wait_until(lambda: all(row[3] is not None for row in agent.outbox()), timeout=60)
            restored.stop()
            await screen.wait_status(lambda s: not s["online"], timeout=30)
            refused = await verdict(screen, deleted_after[1])
            assert not refused["accepted"] and refused["reason"] == "deleted" and refused["mode"] == "offline"
            not_printed = await verdict(screen, short_printed_after)
            assert not not_printed["accepted"] and not_printed["reason"] == "not_printed"
            valid_again = await verdict(screen, valid_then_deleted[1])  # valid in the restored state
            assert valid_again["accepted"] and valid_again["mode"] == "offline"
            scanned_again = await verdict(screen, scanned_offline[1])  # the kiosk's own offline use still counts
            assert not scanned_again["accepted"] and scanned_again["reason"] == "already_used"
    finally:
        agent.stop()
        restored.stop()
    # The scan made offline before the restore reached the restored server, and used its ticket there.
    assert restored.db_rows("SELECT ticket_id FROM scans WHERE scan_id = ?", (offline_scan_id,)) == [
        (scanned_offline[0],)
    ]
    assert restored.db_rows("SELECT used_scan_id FROM tickets WHERE id = ?", (scanned_offline[0],)) == [
        (offline_scan_id,)
    ]
    assert "restored from a backup: syncing everything again" in agent.log.read_text()


async def test_a_kiosk_running_through_the_restore_drops_what_only_the_lost_changes_said(
    tmp_path, database_url, restored_target
):
    """The kiosk stays on while the server is restored: once its link is back it starts over, so a
    ticket printed only after the backup (not printed in the restored state) is refused offline, and
    one deleted only after the backup passes again."""
    live = ServerProcess(tmp_path / "live", database_url=database_url).start()
    agent = await enrolled_agent(live, tmp_path / "kiosk")
    (deleted_after_backup, *_rest), (printed_after, short_printed_after) = andina_tickets(live)
    backup_file = tmp_path / "nightly.tar"
    restored_dir, restored_url = restored_target
    restored = ServerProcess(restored_dir, port=live.port, database_url=restored_url)
    agent.start()
    try:
        # The lane screen's socket is open only while the test reads it: the agent closes a screen that has not
        # answered its ping for a few seconds, and the restore's commands take longer than that.
        async with KioskScreen(agent) as screen:
            await screen.wait_status(lambda s: s["online"], timeout=30)
            await back_up_then_print_and_delete(live, agent, backup_file, printed_after, deleted_after_backup[0])
            await asyncio.to_thread(live.stop)
            await screen.wait_status(lambda s: not s["online"], timeout=30)
        result = await asyncio.to_thread(
            command,
            "restore", "--data-dir", str(restored_dir), *database_options(restored_url), "--from", str(backup_file),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        await asyncio.to_thread(restored.start)
        async with KioskScreen(agent) as screen:
            await screen.wait_status(lambda s: s["online"], timeout=30)  # online once its catch-up pull is done
            await asyncio.to_thread(restored.stop)
            await screen.wait_status(lambda s: not s["online"], timeout=30)
            not_printed = await verdict(screen, short_printed_after)
            assert not not_printed["accepted"] and not_printed["reason"] == "not_printed"
            valid_again = await verdict(screen, deleted_after_backup[1])
            assert valid_again["accepted"] and valid_again["mode"] == "offline"
    finally:
        agent.stop()
        restored.stop()
        live.stop()
    assert "the server's data was restored from a backup: syncing everything again" in agent.log.read_text()
