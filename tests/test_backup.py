"""``portgate-server backup`` / ``restore``: a backup taken while kiosks redeem is consistent and
restores into an empty folder, where the server gives the same answers (real server processes,
real kiosk traffic over HTTP, the real commands)."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import aiohttp
import pytest

from tests.stack import ROOT, PortalUser, ServerProcess

pytestmark = [pytest.mark.timeout(120)]


def command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "server.cli", *args], cwd=ROOT, capture_output=True, text=True)


def rows(path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


async def enrolled_kiosk(server: ServerProcess) -> dict[str, str]:
    supervisor = PortalUser(server.url)
    try:
        await supervisor.login("supervisor")
        code = await supervisor.create_kiosk("Garita Respaldo")
        resp = await supervisor.session.post(
            "/api/v1/gate/enrol", json={"enrol_code": code, "fingerprint": "backup-test", "agent_version": "t"}
        )
        assert resp.status == 201, await resp.text()
        return {"Authorization": f"Bearer {(await resp.json())['token']}"}
    finally:
        await supervisor.close()


async def redeem_forever(url: str, headers: dict[str, str], codes: list[str], stop: asyncio.Event) -> int:
    """Kiosk traffic: a redeem after another (each writes a scan, the first of each code a use)."""
    sent = 0
    async with aiohttp.ClientSession(base_url=url, headers=headers) as kiosk:
        while not stop.is_set():
            body = {"scan_id": uuid.uuid4().hex, "code": codes[sent % len(codes)], "scanned_at": "2026-12-06T12:00:00Z"}
            async with kiosk.post("/api/v1/gate/redeem", json=body) as resp:
                assert resp.status == 200, await resp.text()
            sent += 1
    return sent


async def test_a_backup_taken_while_kiosks_redeem_restores_into_an_empty_folder(tmp_path):
    server = ServerProcess(tmp_path / "live").start()
    live_db = server.data_dir / "portgate.db"
    attachment = server.data_dir / "attachments" / uuid.uuid4().hex
    attachment.parent.mkdir(exist_ok=True)
    attachment.write_bytes(b"%PDF-1.4 a customer's attachment")
    (server.data_dir / "secret.key").write_text("9f" * 32)  # as a server without security.secret_key makes
    backup_file = tmp_path / "backups" / "nightly.tar"
    try:
        headers = await enrolled_kiosk(server)
        codes = [r[0] for r in server.db_rows("SELECT short_code FROM tickets WHERE printed_at IS NOT NULL")]
        stop = asyncio.Event()
        traffic = asyncio.create_task(redeem_forever(server.url, headers, codes, stop))
        await asyncio.sleep(1.0)
        made = await asyncio.to_thread(command, "backup", "--data-dir", str(server.data_dir), "--to", str(backup_file))
        await asyncio.sleep(0.5)
        stop.set()
        sent = await traffic
        assert made.returncode == 0, made.stderr
        assert sent > 20 and "tickets" in made.stdout
        again = command("backup", "--data-dir", str(server.data_dir), "--to", str(backup_file))
        assert again.returncode == 3 and "already exists" in again.stderr
    finally:
        server.stop()

    restored_dir = tmp_path / "restored"
    result = command("restore", "--data-dir", str(restored_dir), "--from", str(backup_file))
    assert result.returncode == 0, result.stderr
    restored_db = restored_dir / "portgate.db"
    # A consistent snapshot: every scan it holds is the live one, every use names a scan it holds.
    scans = rows(restored_db, "SELECT scan_id, kiosk_id, ticket_id, code, accepted, reason FROM scans")
    live_scans = set(rows(live_db, "SELECT scan_id, kiosk_id, ticket_id, code, accepted, reason FROM scans"))
    assert scans and set(scans) <= live_scans and len(scans) < len(live_scans)  # redeems went on after it
    uses = rows(restored_db, "SELECT id, used_scan_id FROM tickets WHERE used_at IS NOT NULL")
    scan_ids = {s[0] for s in scans}
    assert uses and all(scan_id in scan_ids for _id, scan_id in uses)
    for table in ("users", "companies", "conflicts", "service_attachments"):
        assert rows(restored_db, f"SELECT * FROM {table}") == rows(live_db, f"SELECT * FROM {table}"), table
    kiosk = "SELECT id, name, status, token_hash FROM kiosks"  # (its last-seen time moved on after)
    assert rows(restored_db, kiosk) == rows(live_db, kiosk)
    assert (restored_dir / "attachments" / attachment.name).read_bytes() == attachment.read_bytes()
    assert (restored_dir / "secret.key").read_bytes() == (server.data_dir / "secret.key").read_bytes()

    refused = command("restore", "--data-dir", str(restored_dir), "--from", str(backup_file))
    assert refused.returncode == 3 and "empty data folder" in refused.stderr
    not_a_backup = tmp_path / "notes.tar"
    not_a_backup.write_text("not a tar file")
    refused = command("restore", "--data-dir", str(tmp_path / "other"), "--from", str(not_a_backup))
    assert refused.returncode == 3 and "not" in refused.stderr and "Traceback" not in refused.stderr

    # The restored installation serves the same answers: its kiosk's token works, a used ticket is used.
    server = ServerProcess(restored_dir).start()
    try:
        used_code = rows(restored_db, f"SELECT short_code FROM tickets WHERE id = {uses[0][0]}")[0][0]
        async with aiohttp.ClientSession(base_url=server.url, headers=headers) as kiosk:
            body = {"scan_id": uuid.uuid4().hex, "code": used_code, "scanned_at": "2026-12-06T12:00:00Z"}
            async with kiosk.post("/api/v1/gate/redeem", json=body) as resp:
                assert resp.status == 200, await resp.text()
                assert (await resp.json())["reason"] == "already_used"
    finally:
        server.stop()


def test_backups_in_a_folder_keep_only_the_newest(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with sqlite3.connect(data_dir / "portgate.db") as conn:
        conn.executescript("CREATE TABLE tickets (id INTEGER); CREATE TABLE users (id INTEGER);")
    folder = tmp_path / "backups"
    folder.mkdir()
    for stamp in ("20261201-020000", "20261202-020000", "20261203-020000"):
        (folder / f"portgate-{stamp}.tar").write_bytes(b"old")
    (folder / "keep-me.txt").write_text("not ours")
    result = command("backup", "--data-dir", str(data_dir), "--to-dir", str(folder), "--keep", "2")
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in folder.iterdir())
    assert names[0] == "keep-me.txt" and "portgate-20261203-020000.tar" in names and len(names) == 3
    assert command("backup", "--data-dir", str(data_dir), "--to", str(folder / "x.tar"), "--keep", "2").returncode == 2
