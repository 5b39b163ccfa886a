"""``portgate-server backup`` / ``restore``: a backup taken while kiosks redeem is consistent and
restores into an empty folder and database, where the server gives the same answers (real server
processes, real kiosk traffic over HTTP, the real commands; SQLite and a real PostgreSQL)."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import aiohttp
import psycopg
import pytest

from server.backup_postgres import ToolError, find_tool, invocation
from tests.backup_support import USE_COLUMNS, assert_same_tables, command, enrolled_kiosk, redeem, redeem_forever, table
from tests.dbaccess import db_rows, open_db
from tests.mailbox import free_port
from tests.stack import ROOT, ServerProcess
from tests.stack import _wait_http as wait_http

pytestmark = [pytest.mark.timeout(180)]


def database_options(url: str) -> list[str]:
    return ["--database-url", url] if url else []


@pytest.fixture
def empty_target(request, database_url, tmp_path):
    """Where a restore goes: (data folder, database URL): on SQLite a new folder, on PostgreSQL also
    a new empty database owned by a role of its own (the backup was made as another: --no-owner)."""
    if not database_url:
        yield tmp_path / "restored", ""
        return
    cluster = request.getfixturevalue("pg_cluster")
    name = f"restored_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{name}" LOGIN')
        admin.execute(f'CREATE DATABASE "{name}" OWNER "{name}"')
    yield tmp_path / "restored", cluster.url(name).replace("portgate@", f"{name}@")
    cluster.drop_database(name)


async def traffic_around_a_backup(server: ServerProcess, backup_file: Path, url: str) -> dict[str, str]:
    """Kiosk redeems flow before, during and after ``backup``; the command succeeds. Returns the kiosk's headers."""
    headers = await enrolled_kiosk(server)
    codes = [r[0] for r in server.db_rows("SELECT short_code FROM tickets WHERE printed_at IS NOT NULL")]
    stop = asyncio.Event()
    traffic = asyncio.create_task(redeem_forever(server.url, headers, codes, stop))
    await asyncio.sleep(1.0)
    made = await asyncio.to_thread(
        command, "backup", "--data-dir", str(server.data_dir), *database_options(url), "--to", str(backup_file)
    )
    await asyncio.sleep(0.5)
    stop.set()
    sent = await traffic
    assert made.returncode == 0, made.stderr
    assert sent > 20 and "tickets" in made.stdout
    return headers


def assert_a_consistent_snapshot(restored: str | Path, live: str | Path) -> list[tuple]:
    """The restored tables are the live ones as they were at one moment while redeems went on:
    returns the restored uses (ticket id, scan id)."""
    fields = "scan_id, kiosk_id, ticket_id, code, accepted, reason"
    scans = table(restored, "scans", fields)
    live_scans = set(table(live, "scans", fields))
    assert scans and set(scans) <= live_scans and len(scans) < len(live_scans)  # redeems went on after it
    uses = table(restored, "tickets", "id, used_scan_id")
    uses = [use for use in uses if use[1] is not None]
    assert uses and {scan_id for _id, scan_id in uses} <= {s[0] for s in scans}  # every use's scan is there
    assert len(uses) == len({s[2] for s in scans if s[4]})  # and every accepted scan's use
    columns = [name for name in db_columns(live, "tickets") if name not in USE_COLUMNS]
    assert table(restored, "tickets", ", ".join(columns)) == table(live, "tickets", ", ".join(columns))
    used_then = table(restored, "tickets", f"id, {', '.join(USE_COLUMNS)}")
    used_now = set(table(live, "tickets", f"id, {', '.join(USE_COLUMNS)}"))
    assert all(row in used_now for row in used_then if row[1] is not None)
    for name in ("users", "companies", "conflicts", "service_attachments"):
        assert table(restored, name) == table(live, name), name
    kiosk = "id, name, status, token_hash"  # (its last-seen time moved on after)
    assert table(restored, "kiosks", kiosk) == table(live, "kiosks", kiosk)
    return uses


def db_columns(url: str | Path, name: str) -> list[str]:
    with open_db(url) as db:
        return [column[0] for column in db.execute(f"SELECT * FROM {name} WHERE 1 = 0").description]


async def test_a_backup_taken_while_kiosks_redeem_restores_into_an_empty_database(tmp_path, database_url, empty_target):
    server = ServerProcess(tmp_path / "live", database_url=database_url).start()
    live = database_url or server.data_dir / "portgate.db"
    attachment = server.data_dir / "attachments" / uuid.uuid4().hex
    attachment.parent.mkdir(parents=True, exist_ok=True)
    attachment.write_bytes(b"%PDF-1.4 a customer's attachment")
    (server.data_dir / "secret.key").write_text("9f" * 32)  # as a server without security.secret_key makes
    backup_file = tmp_path / "backups" / "nightly.tar"
    try:
        headers = await traffic_around_a_backup(server, backup_file, database_url)
        live_options = ["--data-dir", str(server.data_dir), *database_options(database_url)]
        again = command("backup", *live_options, "--to", str(backup_file))
        assert again.returncode == 3 and "already exists" in again.stderr
    finally:
        server.stop()

    restored_dir, restored_url = empty_target
    restore = ["restore", "--data-dir", str(restored_dir), *database_options(restored_url), "--from", str(backup_file)]
    result = command(*restore)
    assert result.returncode == 0, result.stderr
    restored = restored_url or restored_dir / "portgate.db"
    uses = assert_a_consistent_snapshot(restored, live)
    assert (restored_dir / "attachments" / attachment.name).read_bytes() == attachment.read_bytes()
    assert (restored_dir / "secret.key").read_bytes() == (server.data_dir / "secret.key").read_bytes()

    refused = command(*restore)  # the target holds data now
    assert refused.returncode == 3 and "empty" in refused.stderr and "Traceback" not in refused.stderr
    not_a_backup = tmp_path / "notes.tar"
    not_a_backup.write_text("not a tar file")
    refused = command("restore", "--data-dir", str(tmp_path / "other"), "--from", str(not_a_backup))
    assert refused.returncode == 3 and "not" in refused.stderr and "Traceback" not in refused.stderr

    # The restored installation serves the same answers: its kiosk's token works, a used ticket is used.
    server = ServerProcess(restored_dir, database_url=restored_url).start()
    try:
        used_code = db_rows(restored, "SELECT short_code FROM tickets WHERE id = ?", (uses[0][0],))[0][0]
        async with aiohttp.ClientSession(base_url=server.url, headers=headers) as kiosk:
            assert (await redeem(kiosk, used_code))["reason"] == "already_used"
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


def test_backup_on_postgresql_without_pg_dump_says_what_to_install():
    with pytest.raises(ToolError) as missing:
        find_tool("pg_dump", search_path="/nonexistent", debian="/nonexistent/*/bin")
    assert "pg_dump was not found" in str(missing.value) and "postgresql-client" in str(missing.value)


def test_the_database_password_goes_to_pg_dump_in_its_environment_not_on_its_command_line():
    call = invocation(
        "pg_dump", "postgresql://portgate:s3cr%3At@db1:5432,db2:5432/portgate?target_session_attrs=read-write"
    )
    assert "s3cr" not in " ".join(call.argv) and call.env["PGPASSWORD"] == "s3cr:t"
    assert "host=db1,db2" in call.argv[-1] and "target_session_attrs=read-write" in call.argv[-1]


def test_a_backup_of_an_unreachable_database_is_refused_without_showing_its_password(tmp_path):
    from tests.mailbox import free_port

    url = f"postgresql://portgate:s3cret@127.0.0.1:{free_port()}/portgate"
    result = command("backup", "--data-dir", str(tmp_path), "--database-url", url, "--to", str(tmp_path / "b.tar"))
    assert result.returncode == 3 and "Traceback" not in result.stderr, result.stderr
    assert "s3cret" not in result.stderr + result.stdout and not (tmp_path / "b.tar").exists()


def test_a_sqlite_backup_restores_into_postgresql(tmp_path, pg_cluster):
    """The way from a small install's nightly file to PostgreSQL: the restore copies it in (copy-db)."""
    small = tmp_path / "small"
    made = command(
        "init",
        "--data-dir",
        str(small),
        "--operator-name",
        "Terminal del Sur S.A.",
        "--operator-tax-id",
        "0990001234001",
        "--admin-login",
        "jefe",
        "--admin-email",
        "jefe@tps.example",
        "--password-stdin",
        stdin="Muelle2026seguro\n",
    )
    assert made.returncode == 0, made.stderr
    backup_file = tmp_path / "small.tar"
    assert command("backup", "--data-dir", str(small), "--to", str(backup_file)).returncode == 0
    name = f"from_sqlite_{uuid.uuid4().hex[:8]}"
    target = pg_cluster.create_database(name)
    try:
        restore = ["restore", "--data-dir", str(tmp_path / "big"), "--database-url", target, "--from", str(backup_file)]
        result = command(*restore)
        assert result.returncode == 0, result.stderr
        assert "1 users" in result.stdout
        assert_same_tables(target, small / "portgate.db", restored=True)
        refused = command(*restore)
        assert refused.returncode == 3 and "not empty" in refused.stderr
    finally:
        pg_cluster.drop_database(name)


def test_a_restore_into_a_database_a_server_started_on_replaces_its_first_keys_and_says_which_secret_it_kept(
    tmp_path, pg_cluster
):
    """An operator starts the new PostgreSQL node once (it writes its signing keys), then restores the nightly
    backup there: the restore goes through, and a secret.key of the node's own that differs from the backup's
    is named rather than kept in silence. The backup itself is readable by its owner only."""
    small = tmp_path / "small"
    made = command(
        "init", "--data-dir", str(small), "--operator-name", "Terminal del Sur S.A.", "--operator-tax-id",
        "0990001234001", "--admin-login", "jefe", "--admin-email", "jefe@tps.example", "--password-stdin",
        stdin="Muelle2026seguro\n",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    first_start(small, f"sqlite://{small / 'portgate.db'}")  # it makes its secret.key
    backup_file = tmp_path / "small.tar"
    assert command("backup", "--data-dir", str(small), "--to", str(backup_file)).returncode == 0
    assert backup_file.stat().st_mode & 0o777 == 0o600
    name = f"started_{uuid.uuid4().hex[:8]}"
    target = pg_cluster.create_database(name)
    node = tmp_path / "node"
    try:
        first_start(node, target)
        assert db_rows(target, "SELECT COUNT(*) FROM signing_keys")[0][0] >= 1
        (node / "secret.key").write_text("the node's own secret\n")
        result = command("restore", "--data-dir", str(node), "--database-url", target, "--from", str(backup_file))
        assert result.returncode == 0, result.stderr
        assert "kept the secret.key already in" in result.stderr and "will not open" in result.stderr
        assert_same_tables(target, small / "portgate.db", restored=True)
    finally:
        pg_cluster.drop_database(name)


def first_start(data_dir: Path, url: str) -> None:
    """A new node started once on ``url`` (no demo data) until it answers, then stopped."""
    port = free_port()
    argv = [sys.executable, "-m", "server.cli", "--data-dir", str(data_dir), "--database-url", url, "--port", str(port)]
    node = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
    finally:
        node.terminate()
        node.wait(30)
