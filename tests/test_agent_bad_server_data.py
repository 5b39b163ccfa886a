"""The kiosk keeps working whatever comes back from the network: malformed sync pages and live
pushes, refused uploads, broken enrolment answers, and its own bad settings.

The server here is a stand-in that answers with what a broken or mismatched server (or a
proxy rewriting answers) could send; everything on the kiosk's side is the real code: the
HTTP client, the sync service, the SQLite cache and the command line.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gate_agent.app import AGENT, SYNC
from gate_agent.cache import AgentStore, BadSyncData, OutboxEntry
from gate_agent.config import AgentConfig
from gate_agent.enrolment import EnrolmentError, enrol
from gate_core.codes import SigningKey, issue_code
from server.gate.sync import TICKET_COLUMNS
from tests.agent_app import started_agent

KEY = SigningKey.generate(1)
PUBLIC = base64.b64encode(KEY.public_key().public_bytes()).decode()


def good_page(ticket_id: int = 1, seq: int = 1, **extra) -> dict:
    return {
        "columns": list(TICKET_COLUMNS),
        "tickets": [[ticket_id, 7, 1, 1, True, False, f"{ticket_id:020d}", None, None, None, seq]],
        "companies": {"1": "Andina"},
        "generations": {"1": [1]},
        "services": {"1": ["Pesaje", "Weighing"]},
        "itineraries": {"7": ["MSC 1", "2026-01-01T00:00:00+00:00", "2099-01-01T00:00:00+00:00", 1]},
        "kiosks": {},
        "keys": {"1": PUBLIC},
        "cursor": seq,
        "has_more": False,
        **extra,
    }


def broken(change) -> dict:  # noqa: ANN001
    page = copy.deepcopy(good_page(ticket_id=2, seq=2))
    change(page)
    return page


BAD_PAGES = {
    "columns.used_at missing": (lambda p: p["columns"].remove("used_at"), "columns"),
    "ticket id as text": (lambda p: p["tickets"][0].__setitem__(0, "2"), r"tickets\[0\]\.id"),
    "ticket row too short": (lambda p: p["tickets"][0].pop(), r"tickets\[0\]"),
    "used_at not a time": (lambda p: p["tickets"][0].__setitem__(7, "yesterday"), r"tickets\[0\]\.used_at"),
    "printed as text": (lambda p: p["tickets"][0].__setitem__(4, "yes"), r"tickets\[0\]\.printed"),
    "key not base64": (lambda p: p["keys"].__setitem__("2", "%%%"), r"keys\.2"),
    "key of 31 bytes": (lambda p: p["keys"].__setitem__("2", base64.b64encode(b"k" * 31).decode()), r"keys\.2"),
    "key id 0": (lambda p: p["keys"].__setitem__("0", PUBLIC), r"keys\.0"),
    "window end not a time": (lambda p: p["itineraries"]["7"].__setitem__(2, 20990101), r"itineraries\.7\[2\]"),
    "itinerary without window": (lambda p: p["itineraries"].__setitem__("7", ["MSC 1"]), r"itineraries\.7"),
    "company name a number": (lambda p: p["companies"].__setitem__("1", 5), r"companies\.1"),
    "service names not a pair": (lambda p: p["services"].__setitem__("1", "Pesaje"), r"services\.1"),
    "generation services text": (lambda p: p["generations"].__setitem__("1", "1,2"), r"generations\.1"),
    "lookup id not a number": (lambda p: p["companies"].__setitem__("uno", "Andina"), r"companies\.uno"),
    "lookup id of 5000 digits": (lambda p: p["companies"].__setitem__("9" * 5000, "Andina"), r"companies\.9{24}:"),
    "cursor as text": (lambda p: p.__setitem__("cursor", "9"), "cursor"),
    "tickets not a list": (lambda p: p.__setitem__("tickets", {"2": []}), "tickets"),
    "third row's kiosk a boolean": (
        lambda p: p["tickets"].extend(
            [
                [3, 7, 1, 1, 1, 0, "3" * 20, "2026-11-24T08:00:00Z", 4, None, 3],
                [4, 7, 1, 1, 1, 0, "4" * 20, None, True, None, 4],
            ]
        ),
        r"tickets\[2\]\.used_by",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_PAGES))
def test_a_page_with_a_bad_value_stores_nothing_and_names_it(tmp_path, case):
    store = AgentStore(tmp_path / "agent.db")
    try:
        store.apply_changes(good_page(), advance_cursor=True)
        change, where = BAD_PAGES[case]
        with pytest.raises(BadSyncData, match=where):
            store.apply_changes(broken(change), advance_cursor=True)
        assert store.ticket_count == 1 and store.cursor == 1  # ticket 2 and cursor 2 were not stored
        assert store.lookup_short_code(f"{2:020d}") is None
        assert store.get_meta("cursor") == "1"
        company = store.db.execute("SELECT name FROM companies WHERE id = 1").fetchone()
        assert company == ("Andina",)
    finally:
        store.close()


def test_used_tickets_in_the_forms_servers_send_are_stored(tmp_path):
    store = AgentStore(tmp_path / "agent.db")
    try:
        page = good_page()
        page["tickets"] += [
            [2, 7, 1, 1, 1, 0, "2" * 20, "2026-11-24T08:00:00Z", 4, "scan-2-abcdef", 2],
            [3, 7, 1, 1, 1, 0, "3" * 20, "2026-11-24T08:00:00-05:00", "4", "scan-3-abcdef", 3],
        ]
        page["kiosks"] = {"4": "Garita 4"}
        assert store.apply_changes(page, advance_cursor=True) == 3
        for short in ("2", "3"):
            prior = store.facts_for(short * 20, "es").prior_use
            assert prior is not None and (prior.kiosk_name, prior.scan_id) == ("Garita 4", f"scan-{short}-abcdef")
    finally:
        store.close()


def test_a_page_from_a_server_without_the_used_scan_column_is_stored(tmp_path):
    """A server older than the ``used_scan_id`` column: its uses are stored, the scan id unknown."""
    store = AgentStore(tmp_path / "agent.db")
    try:
        page = good_page()
        page["columns"] = [c for c in page["columns"] if c != "used_scan_id"]
        page["tickets"] = [[2, 7, 1, 1, 1, 0, "2" * 20, "2026-11-24T08:00:00Z", 4, 2]]
        page["kiosks"] = {"4": "Garita 4"}
        assert store.apply_changes(page, advance_cursor=True) == 1
        prior = store.facts_for("2" * 20, "es").prior_use
        assert prior is not None and (prior.kiosk_name, prior.scan_id) == ("Garita 4", "")
        with pytest.raises(BadSyncData, match="used_at missing"):
            store.apply_changes(
                {**page, "columns": [c for c in page["columns"] if c != "used_at"]}, advance_cursor=True
            )
    finally:
        store.close()


def test_a_key_stored_by_an_older_agent_that_is_unusable_does_not_stop_the_kiosk(tmp_path):
    path = tmp_path / "agent.db"
    store = AgentStore(path)
    store.apply_changes(good_page(), advance_cursor=True)
    store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO keys (key_id, public) VALUES (9, ?)", (b"not a key",))
    store = AgentStore(path)  # before: ValueError at start-up, on every restart
    try:
        facts = store.facts_for(issue_code(KEY, 1, 7), "es")
        assert facts.parsed.valid and facts.ticket is not None and facts.ticket.company_name == "Andina"
    finally:
        store.close()


# --- against a misbehaving server -----------------------------------------------------------


class StandIn:
    """A kiosk-protocol server whose answers each test sets."""

    def __init__(self) -> None:
        self.pages: list[dict] = [good_page()]
        self.me: dict = {"name": "Garita 1", "allowed_itineraries": None}
        self.uploads: list[list[str]] = []
        self.refuse = None  # (list of scan ids) -> web.Response | None
        self.live_messages: list[str] = []
        self.enrol_answer: dict = {}
        app = web.Application()
        app.router.add_get("/api/v1/gate/me", self._me)
        app.router.add_get("/api/v1/gate/sync", self._sync)
        app.router.add_post("/api/v1/gate/scans", self._scans)
        app.router.add_get("/api/v1/gate/live", self._live)
        app.router.add_post("/api/v1/gate/enrol", self._enrol)
        self.server = TestServer(app, host="127.0.0.1")

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    async def _me(self, request: web.Request) -> web.Response:
        return web.json_response(self.me)

    async def _sync(self, request: web.Request) -> web.Response:
        return web.json_response(self.pages[0])

    async def _scans(self, request: web.Request) -> web.Response:
        scans = (await request.json())["scans"]
        ids = [s["scan_id"] for s in scans]
        refusal = self.refuse(ids) if self.refuse else None
        if refusal is not None:
            return refusal
        self.uploads.append(ids)
        return web.json_response({"results": [{"scan_id": i, "reason": "accepted"} for i in ids]})

    async def _live(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        for message in self.live_messages:
            await ws.send_str(message)
        await asyncio.sleep(30)
        return ws

    async def _enrol(self, request: web.Request) -> web.Response:
        return web.json_response(self.enrol_answer, status=201)


@pytest.fixture
async def stand_in():
    server = StandIn()
    await server.server.start_server()
    yield server
    await server.server.close()


@pytest.fixture
async def kiosk(stand_in, tmp_path):
    """The agent and its sync service; each test pulls and uploads when it says so."""
    config = AgentConfig(server_url=stand_in.url, data_dir=str(tmp_path))
    async with started_agent(config, "t", keep_in_sync=False) as runner:
        yield runner.app[AGENT], runner.app[SYNC]


async def test_a_bad_sync_page_keeps_the_cache_and_the_next_good_one_is_applied(stand_in, kiosk):
    agent, sync = kiosk
    assert await sync.pull() == 1
    stand_in.pages = [broken(lambda p: p["tickets"][0].__setitem__(7, "yesterday"))]
    assert await sync.pull() == 0  # logged, not raised: the scheduler's job and start-up go on
    assert agent.store.cursor == 1 and agent.store.ticket_count == 1
    # The kiosk still decides from what it has.
    code = issue_code(KEY, 1, 7)
    assert (await agent.handle_code(code))["accepted"] is True
    stand_in.pages = [good_page(ticket_id=2, seq=2)]
    assert await sync.pull() == 1
    assert agent.store.cursor == 2 and agent.store.ticket_count == 2


async def test_bad_allowed_itineraries_from_the_server_change_nothing(stand_in, kiosk):
    agent, sync = kiosk
    stand_in.me = {"name": "Garita 1", "allowed_itineraries": {"7": True}}
    await sync.pull()
    assert agent.store.ticket_count == 0
    assert agent.store.gate_config().allowed_itineraries is None


async def test_the_live_channel_survives_pushes_it_cannot_use(stand_in, kiosk):
    agent, sync = kiosk
    push = {k: v for k, v in good_page(ticket_id=5, seq=5).items() if k not in ("cursor", "has_more")}
    bad_push = copy.deepcopy(push)
    bad_push["tickets"][0][0] = "5"
    stand_in.live_messages = [
        json.dumps({"type": "tickets", **bad_push}),
        json.dumps([1, 2, 3]),  # not an object at all
        json.dumps("tickets"),
        json.dumps({"type": "tickets", **push}),
    ]
    task = asyncio.get_running_loop().create_task(sync.live_loop())
    try:
        for _ in range(100):
            if agent.store.lookup_ticket(5):
                break
            await asyncio.sleep(0.05)
        assert agent.store.lookup_ticket(5) is not None, "the good push after the bad ones was not applied"
        assert not task.done()
    finally:
        task.cancel()


def outbox_entries(store: AgentStore, n: int) -> list[str]:
    ids = []
    for i in range(n):
        scan_id = f"scan-{i:04d}-abcdef"
        store.record_scan(OutboxEntry(scan_id, f"CODE{i}", "2026-11-24T10:00:00+00:00", True, "accepted"), None, i)
        ids.append(scan_id)
    return ids


async def test_a_scan_the_server_refuses_for_good_is_set_aside_and_the_others_go(stand_in, kiosk):
    agent, sync = kiosk
    ids = outbox_entries(agent.store, 5)
    bad = ids[2]

    def refuse(batch: list[str]) -> web.Response | None:
        if bad not in batch:
            return None
        field = f"scans.{batch.index(bad)}.reason"
        error = {"code": "invalid", "message": "Check the fields.", "fields": {field: "Unknown reason code."}}
        return web.json_response({"error": error}, status=400)

    stand_in.refuse = refuse
    assert await sync.upload(force=True) == 4
    assert sorted(i for batch in stand_in.uploads for i in batch) == sorted(set(ids) - {bad})
    assert agent.store.pending_count() == 0
    [(scan_id, why)] = agent.store.rejected()
    assert scan_id == bad and "Unknown reason code." in why
    # Later scans are not held up behind it, and it is never sent again.
    later = outbox_entries(agent.store, 7)[5:]
    assert await sync.upload(force=True) == 2
    assert stand_in.uploads[-1] == later


async def test_a_refusal_that_names_no_scan_keeps_every_scan_for_later(stand_in, kiosk):
    agent, sync = kiosk
    outbox_entries(agent.store, 3)
    stand_in.refuse = lambda batch: web.json_response({"error": {"code": "bad_request", "message": "?"}}, status=400)
    assert await sync.upload(force=True) == 0
    assert agent.store.pending_count() == 3 and agent.store.rejected() == []
    stand_in.refuse = lambda batch: web.json_response({"error": "not the usual shape"}, status=422)
    assert await sync.upload(force=True) == 0
    assert agent.store.pending_count() == 3
    stand_in.refuse = None
    assert await sync.upload(force=True) == 3


async def test_an_upload_too_big_for_the_server_goes_in_smaller_batches(stand_in, kiosk):
    agent, sync = kiosk
    ids = outbox_entries(agent.store, 6)
    stand_in.refuse = lambda batch: (
        web.json_response({"error": {"code": "too_large", "message": "Too large."}}, status=413)
        if len(batch) > 2
        else None
    )
    assert await sync.upload(force=True) == 6
    assert all(len(batch) <= 2 for batch in stand_in.uploads)
    assert sorted(i for batch in stand_in.uploads for i in batch) == ids


async def test_a_proxy_that_refuses_even_one_scan_sets_nothing_aside(stand_in, kiosk):
    """A 413 for a single scan of a few hundred bytes is the network's doing, not the scan's."""
    agent, sync = kiosk
    outbox_entries(agent.store, 20)
    stand_in.refuse = lambda batch: web.Response(status=413, text="<html>413 Request Entity Too Large</html>")
    assert await sync.upload(force=True) == 0
    assert agent.store.pending_count() == 20 and agent.store.rejected() == []
    stand_in.refuse = None
    assert await sync.upload(force=True) == 20


async def test_refused_scans_show_on_the_kiosk_and_can_be_queued_again(stand_in, kiosk, tmp_path):
    agent, sync = kiosk
    [scan_id] = outbox_entries(agent.store, 1)
    error = {"code": "invalid", "message": "?", "fields": {"scans.0.reason": "Unknown reason code."}}
    stand_in.refuse = lambda batch: web.json_response({"error": error}, status=400)
    await sync.upload(force=True)
    assert agent.status_message()["rejected"] == 1 and agent.status_message()["pending"] == 0
    config = write_config(tmp_path / "agent.toml", tmp_path)  # the kiosk's own data_dir
    listed = agent_cli("outbox", "--config", str(config), cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "refused by the server: 1" in listed.stdout and scan_id in listed.stdout
    assert "Unknown reason code." in listed.stdout
    retried = agent_cli("outbox", "--retry", "--config", str(config), cwd=tmp_path)
    assert "queued again: 1" in retried.stdout
    stand_in.refuse = None  # the server was updated
    assert await sync.upload(force=True) == 1
    assert stand_in.uploads == [[scan_id]] and agent.status_message()["rejected"] == 0


def test_a_window_that_ends_before_it_starts_refuses_instead_of_crashing(tmp_path):
    store = AgentStore(tmp_path / "agent.db")
    try:
        page = good_page()
        page["itineraries"]["7"] = ["MSC 1", "2026-12-01T00:00:00+00:00", "2026-11-01T00:00:00+00:00", 1]
        store.apply_changes(page, advance_cursor=True)
        facts = store.facts_for(issue_code(KEY, 1, 7), "es")
        assert facts.ticket is not None and facts.window is None
    finally:
        store.close()


async def test_uploaded_scans_are_forgotten_after_the_keep_time_and_pending_ones_never(stand_in, kiosk):
    agent, sync = kiosk
    ids = outbox_entries(agent.store, 3)
    day = 86400
    agent.store.mark_uploaded([ids[0]], time.time() - 31 * day)
    agent.store.mark_uploaded([ids[1]], time.time() - 29 * day)
    assert await sync.prune(time.time()) == 1
    left = {r[0] for r in agent.store.db.execute("SELECT scan_id FROM outbox").fetchall()}
    assert left == {ids[1], ids[2]}
    assert [e.scan_id for e in agent.store.pending()] == [ids[2]]


async def test_an_enrolment_answer_without_a_token_is_an_error_not_a_crash(stand_in, tmp_path):
    store = AgentStore(tmp_path / "agent.db")
    try:
        stand_in.enrol_answer = {"kiosk_id": 3}
        with pytest.raises(EnrolmentError, match="no access token"):
            await enrol(AgentConfig(server_url=stand_in.url), store, "ABCD-EFGH")
        stand_in.enrol_answer = {"token": "t", "allowed_itineraries": "all"}
        with pytest.raises(EnrolmentError, match="allowed_itineraries"):
            await enrol(AgentConfig(server_url=stand_in.url), store, "ABCD-EFGH")
        assert store.get_meta("token") is None
    finally:
        store.close()


# --- the kiosk's own settings ---------------------------------------------------------------


def agent_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gate_agent.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )


def write_config(path: Path, data_dir: Path, scanner: str = "") -> Path:
    path.write_text(f'server_url = "http://127.0.0.1:9"\ndata_dir = "{data_dir}"\n{scanner}', encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("config is a folder", "cannot be read"),
        ("config in Latin-1", "not UTF-8"),
        ("data_dir is a file", "data_dir: cannot open the kiosk database"),
        ("replay scanner with no files", r"scanner\[0\]: give at least one file"),
        ("serial scanner of an unknown kind", r"scanner\[0\]: .*'bogus'"),
    ],
)
def test_settings_that_cannot_work_stop_the_agent_with_a_clear_message(tmp_path, case, expected):
    config = tmp_path / "agent.toml"
    data_dir = tmp_path / "data"
    if case == "config is a folder":
        config.mkdir()
    elif case == "config in Latin-1":
        config.write_bytes('kiosk_name = "Garita Número 1"\n'.encode("latin-1"))
    elif case == "data_dir is a file":
        data_dir.write_text("not a folder")
        write_config(config, data_dir)
    elif case == "replay scanner with no files":
        (tmp_path / "empty").mkdir()
        write_config(config, data_dir, f'[[scanner]]\ntype = "replay"\nsource = "{tmp_path / "empty"}"\n')
    else:
        write_config(config, data_dir, '[[scanner]]\ntype = "serial"\nsource = "bogus://scanner"\n')
    # Enrolling reads the settings and opens the database too, but starts no scanner.
    commands = [["run"]] if "scanner" in case else [["run"], ["enrol", "--code", "ABCD"]]
    for command in commands:
        result = agent_cli(*command, "--config", str(config), cwd=tmp_path)
        assert result.returncode == 2, (command, result.stderr)
        assert "configuration error" in result.stderr and "Traceback" not in result.stderr
        assert re.search(expected, result.stderr), result.stderr


async def test_a_scan_during_a_big_sync_page_is_not_held_up_until_the_page_is_stored(stand_in, kiosk):
    """A page of 60,000 changed tickets (a big generation at the port) is stored in parts; a truck
    scanned meanwhile gets its verdict, with its outbox entry recorded, between two parts."""
    agent, sync = kiosk
    await sync.pull()  # ticket 1 and its lookups
    big = good_page(ticket_id=2, seq=2)
    big["tickets"] = [[i, 7, 1, 1, 1, 0, f"{i:020d}", None, None, None, i] for i in range(2, 60_002)]
    big["cursor"] = 60_001
    stand_in.pages = [big]
    pulling = asyncio.get_running_loop().create_task(sync.pull())
    for _ in range(500):  # until the first part is stored
        if agent.store.lookup_ticket(2):
            break
        await asyncio.sleep(0.005)
    verdict = await agent.handle_code(issue_code(KEY, 1, 7))
    assert verdict["accepted"] is True
    assert not pulling.done(), "the scan waited for the whole page"
    assert agent.store.cursor == 1  # the cursor moves only with the page's last part
    assert await pulling == 60_000
    assert agent.store.cursor == 60_001 and agent.store.ticket_count == 60_001
    assert agent.store.db.execute("SELECT COUNT(*) FROM outbox").fetchone() == (1,)


async def test_a_proxys_401_page_does_not_revoke_the_kiosk_but_the_servers_word_does(stand_in, kiosk):
    agent, sync = kiosk
    outbox_entries(agent.store, 1)
    stand_in.refuse = lambda batch: web.Response(status=401, text="<html>Proxy login required</html>")
    assert await sync.upload(force=True) == 0
    assert not agent.status.revoked and agent.store.get_meta("revoked") != "1"
    error = {"code": "revoked_kiosk", "message": "This kiosk has been revoked."}
    stand_in.refuse = lambda batch: web.json_response({"error": error}, status=403)
    await sync.upload(force=True)
    assert agent.status.revoked and agent.store.get_meta("revoked") == "1"
