"""``portgate-server copy-db``: a live SQLite install (demo data, redeems, helpdesk tickets with an
attachment) moves to a real PostgreSQL and a server on it gives the same answers; and back.

Real server processes, real kiosk and customer traffic over HTTP, the real command; this test is
about moving between the two engines, so it takes both at once rather than the engine parameter.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.backup_support import assert_same_tables, command, enrolled_kiosk, redeem
from tests.dbaccess import db_rows, db_value
from tests.helpdesk_support import ANDINA, new_serial, png_bytes, ticket_body, token_as
from tests.stack import PortalUser, ServerProcess

pytestmark = [pytest.mark.timeout(240)]


async def open_ticket_with_attachment(server: aiohttp.ClientSession, database: str | Path) -> dict[str, Any]:
    """A customer's helpdesk ticket with a screenshot, through the API: the ticket as the API shows it."""
    admin = await token_as(server, "admin")
    andina = await token_as(server, "andina", "customer")
    serial = await new_serial(server, admin, database, ANDINA)
    form = aiohttp.FormData()
    for name, value in ticket_body(serial["policy_id"], "mudanza@andina.example").items():
        form.add_field(name, str(value))
    form.add_field("attachments", png_bytes(), filename="pantalla.png", content_type="image/png")
    resp = await server.post("/api/v1/helpdesk/tickets", data=form, headers=andina)
    assert resp.status == 201, await resp.text()
    return await (await server.get(f"/api/v1/helpdesk/tickets/{(await resp.json())['id']}", headers=andina)).json()


async def customer_answers(base_url: str) -> dict[str, Any]:
    """What a customer sees: a fresh login (the password checked against the stored hash), then
    the gate tickets list, the helpdesk list and an attachment's bytes."""
    async with aiohttp.ClientSession(base_url=base_url) as session:
        andina = await token_as(session, "andina", "customer")
        tickets = await (await session.get("/api/v1/tickets", headers=andina)).json()
        helpdesk = await (await session.get("/api/v1/helpdesk/tickets", headers=andina)).json()
        ticket_id = helpdesk["tickets"][0]["id"]
        detail = await (await session.get(f"/api/v1/helpdesk/tickets/{ticket_id}", headers=andina)).json()
        files = [await (await session.get(f["url"], headers=andina)).read() for f in detail["attachments"]]
    return without_relative_times({"tickets": tickets, "helpdesk": helpdesk, "detail": detail, "files": files})


def without_relative_times(answer: Any) -> Any:
    """``answer`` without its "3 minutes ago" texts: they move with the clock, whatever the engine."""
    if isinstance(answer, dict):
        return {key: without_relative_times(value) for key, value in answer.items() if not key.endswith("_ago")}
    if isinstance(answer, list):
        return [without_relative_times(item) for item in answer]
    return answer


async def test_a_live_sqlite_install_copied_to_postgresql_serves_the_same_answers(tmp_path, pg_cluster):
    server = ServerProcess(tmp_path / "data").start()
    sqlite_db = server.data_dir / "portgate.db"
    target_name = f"moved_{uuid.uuid4().hex[:8]}"
    target = pg_cluster.create_database(target_name)
    try:
        headers = await enrolled_kiosk(server)
        codes = [r[0] for r in server.db_rows("SELECT short_code FROM tickets WHERE printed_at IS NOT NULL")]
        async with aiohttp.ClientSession(base_url=server.url, headers=headers) as kiosk:
            assert [(await redeem(kiosk, code))["accepted"] for code in codes[:2]] == [True, True]
        async with aiohttp.ClientSession(base_url=server.url) as session:
            opened = await open_ticket_with_attachment(session, sqlite_db)
        assert opened["attachments"]
        before = await customer_answers(server.url)
        total = server.db_rows("SELECT count(*) FROM tickets")[0][0]
        copied = command("copy-db", "--from", f"sqlite://{sqlite_db}", "--to", target)  # the server still serving
        assert copied.returncode == 0, copied.stderr
        assert f"tickets: {total} rows" in copied.stdout and "service_attachments: 1 rows" in copied.stdout
        again = command("copy-db", "--from", f"sqlite://{sqlite_db}", "--to", target)
        assert again.returncode == 3 and "not empty" in again.stderr and "Traceback" not in again.stderr
    finally:
        server.stop()  # its last flush of the kiosk's liveness comes after the copy
    assert_same_tables(target, sqlite_db, source_served_on=True)

    # And back: PostgreSQL to a new SQLite file holds the same rows too.
    back = tmp_path / "back" / "portgate.db"
    result = command("copy-db", "--from", target, "--to", f"sqlite://{back}")
    assert result.returncode == 0, result.stderr
    assert_same_tables(back, target)

    # The same folder (attachments, keys) served from the PostgreSQL database.
    server = ServerProcess(tmp_path / "data", database_url=target).start()
    try:
        assert await customer_answers(server.url) == before
        last_scan = db_value(target, "SELECT max(id) FROM scans")
        async with aiohttp.ClientSession(base_url=server.url, headers=headers) as kiosk:
            assert (await redeem(kiosk, codes[0]))["reason"] == "already_used"
            assert (await redeem(kiosk, codes[2]))["accepted"] is True
        assert db_value(target, "SELECT count(*) FROM scans WHERE id > ?", (last_scan,)) == 2  # fresh ids
        supervisor = PortalUser(server.url)
        try:
            await supervisor.login("supervisor")  # the portal's login form, same password
            assert await supervisor.create_kiosk("Garita Nueva")
        finally:
            await supervisor.close()
        names = [r[0] for r in db_rows(target, "SELECT name FROM kiosks ORDER BY id")]
        assert names == ["Garita Respaldo", "Garita Nueva"]
        async with aiohttp.ClientSession(base_url=server.url) as session:
            assert (await open_ticket_with_attachment(session, target))["attachments"]
    finally:
        server.stop()
        pg_cluster.drop_database(target_name)


def test_copy_db_refuses_a_missing_source_and_a_bad_url(tmp_path):
    missing = command("copy-db", "--from", f"sqlite://{tmp_path}/none.db", "--to", f"sqlite://{tmp_path}/x.db")
    assert missing.returncode == 3 and "no database at" in missing.stderr and not (tmp_path / "x.db").exists()
    bad = command("copy-db", "--from", "mysql://db/portgate", "--to", f"sqlite://{tmp_path}/x.db")
    assert bad.returncode == 2 and "sqlite:///path or postgresql://" in bad.stderr
