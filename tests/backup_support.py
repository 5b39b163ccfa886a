"""What the backup, restore and copy-db tests share: the real commands, a kiosk enrolled and
redeeming against a real server process, and whole tables read for comparison on either engine."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from server.copy_db import tables
from tests.dbaccess import db_rows, open_db
from tests.stack import ROOT, PortalUser, ServerProcess

#: Columns of a ticket a redeem writes (the rest never change while kiosks redeem).
USE_COLUMNS = ("used_at", "used_scan_id", "used_kiosk_id", "used_seq")


def command(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``portgate-server ARGS`` as an operator runs it (a process of its own)."""
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args], cwd=ROOT, input=stdin, capture_output=True, text=True
    )


async def enrolled_kiosk(server: ServerProcess, name: str = "Garita Respaldo") -> dict[str, str]:
    """A kiosk created by the demo supervisor and enrolled through the API: its Authorization header."""
    supervisor = PortalUser(server.url)
    try:
        await supervisor.login("supervisor")
        code = await supervisor.create_kiosk(name)
        resp = await supervisor.session.post(
            "/api/v1/gate/enrol", json={"enrol_code": code, "fingerprint": "backup-test", "agent_version": "t"}
        )
        assert resp.status == 201, await resp.text()
        return {"Authorization": f"Bearer {(await resp.json())['token']}"}
    finally:
        await supervisor.close()


async def redeem(kiosk: aiohttp.ClientSession, code: str) -> dict[str, Any]:
    body = {"scan_id": uuid.uuid4().hex, "code": code, "scanned_at": "2026-12-06T12:00:00Z"}
    async with kiosk.post("/api/v1/gate/redeem", json=body) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def redeem_forever(url: str, headers: dict[str, str], codes: list[str], stop: asyncio.Event) -> int:
    """Kiosk traffic: a redeem after another (each writes a scan, the first of each code a use)."""
    sent = 0
    async with aiohttp.ClientSession(base_url=url, headers=headers) as kiosk:
        while not stop.is_set():
            await redeem(kiosk, codes[sent % len(codes)])
            sent += 1
    return sent


def table_names(url: Any) -> list[str]:
    with open_db(url) as db:
        return sorted(tables(db))


def table(url: Any, name: str, columns: str = "*") -> list[tuple]:
    """Every row of a table, in a fixed order whatever the engine returned them in."""
    return sorted(db_rows(url, f"SELECT {columns} FROM {name}"), key=repr)


#: A kiosk's liveness, which its server flushes now and then (and when it stops): on a source that
#: was still serving after the copy, these move on; everything else must be as copied.
KIOSK_LIVENESS = ("last_seen_at", "pending_uploads", "last_sync_seq", "storage_fault")


#: What a restore gives anew (server.backup): the sync epoch, so that kiosks start their sync over.
RENEWED_BY_RESTORE = ("sync_epoch",)


def assert_same_tables(
    copy: str | Path, original: str | Path, *, source_served_on: bool = False, restored: bool = False
) -> None:
    """Every table holds the same rows; ``source_served_on``: the kiosks' liveness columns aside;
    ``restored``: the copy is a restore's, whose sync epoch is a new one."""
    names = [name for name in table_names(original) if name != "_migrations"]
    assert names and names == [name for name in table_names(copy) if name != "_migrations"]
    for name in names:
        if restored and name in RENEWED_BY_RESTORE:
            assert table(copy, name) != table(original, name), name
            continue
        columns = "*"
        if source_served_on and name == "kiosks":
            with open_db(original) as db:
                every = [d[0] for d in db.execute("SELECT * FROM kiosks WHERE 1 = 0").description]
            columns = ", ".join(c for c in every if c not in KIOSK_LIVENESS)
        assert table(copy, name, columns) == table(original, name, columns), name
