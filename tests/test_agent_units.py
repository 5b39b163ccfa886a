"""The agent's own pieces: strict settings, the server-following clock, the cache's ordering rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gate_agent.agent import ServerClock, new_scan_id
from gate_agent.cache import AgentStore, OutboxEntry
from gate_agent.config import AgentConfigError, load_agent_config
from server.gate.sync import TICKET_COLUMNS

COLUMNS = list(TICKET_COLUMNS)  # the server's sync format, so the agent is tested against it


def page(rows, **extra):
    return {
        "columns": COLUMNS,
        "tickets": rows,
        "companies": {"1": "Andina"},
        "itineraries": {"7": ["MSC 1", "2026-01-01T00:00+00:00", "2027-01-01T00:00+00:00", 1]},
        **extra,
    }


def test_settings_reject_unknown_keys_and_bad_values(tmp_path):
    bad = tmp_path / "agent.toml"
    bad.write_text('server_url = "http://x"\nserver_ulr = "typo"\n')
    with pytest.raises(AgentConfigError, match="server_ulr: unknown setting"):
        load_agent_config(bad, environ={})
    bad.write_text('[[scanner]]\ntype = "camera"\nsource = "0"\nsuffix = "TAB"\n')
    with pytest.raises(AgentConfigError, match=r"scanner\[0\].suffix"):
        load_agent_config(bad, environ={})
    with pytest.raises(AgentConfigError, match="online_timeout_ms"):
        load_agent_config(None, environ={"PORTGATE_AGENT_ONLINE_TIMEOUT_MS": "5"})
    with pytest.raises(AgentConfigError, match="server_url"):
        load_agent_config(None, environ={}, server_url="ftp://server")
    good = tmp_path / "good.toml"
    good.write_text('language = "en"\n[[scanner]]\ntype = "serial"\nsource = "loop://"\nbaudrate = 115200\n')
    config = load_agent_config(good, environ={"PORTGATE_AGENT_UI_PORT": "9001"})
    assert config.language == "en" and config.ui_port == 9001 and config.scanners[0].baudrate == 115200


def test_scan_ids_are_unique_valid_for_the_server_and_sorted_by_time():
    import re
    import time

    from server.gate.api import SCAN_ID_RE

    ids = []
    for _ in range(3):
        ids.extend(new_scan_id() for _ in range(2000))
        time.sleep(0.002)
    assert len(set(ids)) == len(ids)
    assert all(SCAN_ID_RE.match(scan_id) and re.fullmatch(r"[0-9a-f]{32}", scan_id) for scan_id in ids)
    stamps = [scan_id[:12] for scan_id in ids]
    assert stamps == sorted(stamps) and len(set(stamps)) >= 3  # later ids never sort before earlier ones
    assert abs(int(ids[-1][:12], 16) / 1000 - time.time()) < 5


def test_the_clock_follows_the_server_not_the_local_clock():
    clock = ServerClock()
    local_now = datetime.now(UTC).timestamp()
    server_time = datetime.now(UTC) + timedelta(minutes=7)  # the kiosk's clock is 7 minutes slow
    clock.observe(server_time, local_now, local_now + 0.02)
    assert abs((clock.now() - datetime.now(UTC)) - timedelta(minutes=7)) < timedelta(seconds=1)


def test_an_older_push_never_overwrites_a_newer_state(tmp_path):
    store = AgentStore(tmp_path / "agent.db")
    try:
        store.apply_changes(
            page([[1, 7, 1, 1, 1, 1, "11111111111111111111", None, None, None, 20]], cursor=20), advance_cursor=True
        )
        # A live message about the same ticket from before its deletion arrives late.
        store.apply_changes(
            page([[1, 7, 1, 1, 1, 0, "11111111111111111111", None, None, None, 15]]), advance_cursor=False
        )
        facts = store.facts_for("11111111111111111111", "es")
        assert facts.ticket.deleted and store.cursor == 20
        # The cursor never moves back either.
        store.apply_changes(page([], cursor=5), advance_cursor=True)
        assert store.cursor == 20
    finally:
        store.close()


def test_accepted_scan_marks_a_local_use_until_the_server_knows(tmp_path):
    store = AgentStore(tmp_path / "agent.db")
    try:
        store.apply_changes(
            page([[2, 7, 1, 1, 1, 0, "22222222222222222222", None, None, None, 3]], cursor=3), advance_cursor=True
        )
        store.record_scan(
            OutboxEntry("scan-a", "22222222222222222222", "2026-11-24T10:00:00+00:00", True, "accepted"), 2, 1.0
        )
        prior = store.facts_for("22222222222222222222", "es").prior_use
        assert prior is not None and prior.scan_id == "scan-a"
        assert [e.scan_id for e in store.pending()] == ["scan-a"]
        store.apply_changes(
            page(
                [[2, 7, 1, 1, 1, 0, "22222222222222222222", "2026-11-24T10:00:01+00:00", "4", "scan-4-abcdef", 4]],
                kiosks={"4": "Garita 4"},
            ),
            advance_cursor=False,
        )
        prior = store.facts_for("22222222222222222222", "es").prior_use
        assert prior.kiosk_name == "Garita 4"
        store.mark_uploaded(["scan-a"], 2.0)
        assert store.pending_count() == 0
    finally:
        store.close()


def test_a_use_only_the_server_accepted_shows_the_time_of_the_scan(tmp_path):
    """Refused here, accepted by the server: a second scan of the ticket says it was used when the
    first was scanned (the time the agent gives), not whenever the database wrote it down."""
    store = AgentStore(tmp_path / "agent.db")
    try:
        store.apply_changes(page([[4, 7, 1, 1, 1, 0, "4" * 20, None, None, None, 3]], cursor=3), advance_cursor=True)
        scanned = datetime(2026, 11, 24, 10, 0, 5, tzinfo=UTC)
        entry = OutboxEntry("scan-e", "4" * 20, scanned.isoformat(), False, "not_printed")
        store.record_scan(entry, 4, scanned.timestamp())
        store.settle_online("scan-e", 4, {"accepted": True, "reason": "accepted"}, scanned.timestamp())
        prior = store.facts_for("4" * 20, "es").prior_use
        assert prior is not None and (prior.used_at, prior.scan_id) == (scanned, "scan-e")
    finally:
        store.close()


def test_a_failed_settlement_leaves_the_store_usable(tmp_path):
    store = AgentStore(tmp_path / "agent.db")
    try:
        entry = OutboxEntry("scan-b", "33333333333333333333", "2026-11-24T10:00:00+00:00", True, "accepted")
        store.record_scan(entry, None, 1.0)
        with pytest.raises(AttributeError):
            store.settle_online("scan-b", None, ["not", "a", "verdict"], 2.0)  # type: ignore[arg-type]
        # Rolled back: the scan still waits for upload, and the next scan is recorded as usual.
        store.record_scan(OutboxEntry("scan-c", "4" * 20, "2026-11-24T10:01:00+00:00", False, "unknown"), None, 3.0)
        assert [e.scan_id for e in store.pending()] == ["scan-b", "scan-c"]
    finally:
        store.close()


async def test_an_answer_that_is_not_the_servers_is_unreachable_not_a_verdict(aiohttp_client):
    """A captive portal or proxy page with HTTP 200 must not count as the server's answer."""
    from aiohttp import ClientSession, web

    from gate_agent.sync.client import GateClient, Unreachable

    portal = web.Application()

    async def login_page(request: web.Request) -> web.Response:
        return web.Response(text="<html>Please log in to the Wi-Fi</html>", content_type="text/html")

    portal.router.add_route("*", "/{tail:.*}", login_page)
    server = await aiohttp_client(portal)
    async with ClientSession() as session:
        client = GateClient(str(server.make_url("")).rstrip("/"), "pgk_token", session)
        with pytest.raises(Unreachable):
            await client.redeem("scan-d", "4" * 20, datetime.now(UTC), timeout=5)
        with pytest.raises(Unreachable):
            await client.upload([], 0)


def test_the_example_agent_settings_file_is_valid():
    config = load_agent_config(Path(__file__).resolve().parents[1] / "systemd" / "agent.toml.example", environ={})
    assert config.outbox_keep_days == 30 and [s.type for s in config.scanners] == ["camera", "serial"]


def test_a_failed_write_leaves_the_kiosk_database_usable(tmp_path):
    """Every writer rolls back on error; before, a failed settings write left the connection inside an
    open transaction and every later write (the outbox too) failed."""
    import sqlite3

    store = AgentStore(tmp_path / "agent.db")
    try:
        with pytest.raises(sqlite3.Error):
            store.set_meta({("not", "a key"): "x"})  # a key SQLite cannot bind
        store.set_meta({"kiosk_name": "Garita 1"})
        store.record_scan(OutboxEntry("scan-after", "CODE", "2026-11-24T10:00:00+00:00", False, "malformed"), None, 1)
        assert store.get_meta("kiosk_name") == "Garita 1" and store.pending_count() == 1
    finally:
        store.close()
