"""Fixtures for browser tests: a real server process, a real SMTP server, Chromium through Playwright.

``tests/conftest.py`` imports the fixtures, so any test module can ask for them. Nothing here is
faked: the server is started with ``python -m server.cli --demo`` exactly as an operator would,
and sends its mail over SMTP to an aiosmtpd server whose inbox the tests read.

A module's server runs on each engine in turn (``live_database_url``: SQLite's file, then a fresh
PostgreSQL database for the module), except the modules in :data:`SQLITE_ONLY`, each with its reason.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from tests.conftest import ENGINES, fresh_database
from tests.mailbox import Mailbox, free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class RunningServer:
    url: str
    data_dir: Path
    log: Path
    process: subprocess.Popen
    #: ``""``: the SQLite file under ``data_dir``.
    database_url: str = ""

    @property
    def db_url(self) -> str:
        """Its database, for ``tests.dbaccess`` (the tests' reads of what the server wrote)."""
        return self.database_url or str(self.data_dir / "portgate.db")

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


#: Browser modules whose server stays on SQLite, and why: none now (the phone layout, PWA and phone-screen modules
#: joined the others on 2026-12-07 once their reads of the server's data went through tests.dbaccess).
SQLITE_ONLY: dict[str, str] = {}


@pytest.fixture(scope="module", params=ENGINES)
def live_database_url(request) -> Iterator[str]:
    """The database of a module's demo server: ``""`` (SQLite's file under its data dir) or a fresh
    PostgreSQL database kept for the module."""
    if request.param == "sqlite":
        yield ""
        return
    if reason := SQLITE_ONLY.get(request.module.__name__):
        pytest.skip(f"SQLite only: {reason}")
    cluster = request.getfixturevalue("pg_cluster")
    name, url = fresh_database(cluster)
    yield url
    cluster.drop_database(name)


@pytest.fixture(scope="module")
def browser_smtp() -> Iterator[Mailbox]:
    """An SMTP server for the whole module (the server process keeps one address for its life)."""
    mailbox = Mailbox()
    mailbox.port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=mailbox.port)
    controller.start()
    yield mailbox
    controller.stop()


def wait_until_healthy(url: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server not healthy after {timeout} s")


@contextlib.contextmanager
def demo_server(data_dir: Path, smtp_port: int, database_url: str = "", **extra_env: str) -> Iterator[RunningServer]:
    """``python -m server.cli --demo`` on a free port, mailing through the SMTP server on ``smtp_port``,
    on SQLite (``database_url`` empty) or the PostgreSQL database ``database_url`` names."""
    port = free_port()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    log = data_dir.parent / f"server-{port}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTGATE_", "HELPDESK_"))}
    env.update(
        PORTGATE_MAIL__BACKEND="smtp",
        PORTGATE_MAIL__HOST="127.0.0.1",
        PORTGATE_MAIL__PORT=str(smtp_port),
        PORTGATE_SECURITY__SECRET_KEY="x",
        PORTGATE_SUPPORT_EMAIL="soporte@terminal.example",
        **({"PORTGATE_DATABASE_URL": database_url} if database_url else {}),
        **extra_env,
    )
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "--demo", "--data-dir", str(data_dir), "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = RunningServer(f"http://127.0.0.1:{port}", data_dir, log, process, database_url)
    try:
        wait_until_healthy(server.url, process)
    except RuntimeError as exc:
        process.kill()
        process.wait()
        pytest.fail(f"{exc}\n{server.log_tail()}")
    try:
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def live_server(tmp_path_factory, browser_smtp, live_database_url) -> Iterator[RunningServer]:
    """The demo server for a module's browser tests, on each engine in turn."""
    browser_smtp.messages.clear()  # the module's server on the other engine mailed here too
    with demo_server(tmp_path_factory.mktemp("live") / "data", browser_smtp.port, live_database_url) as server:
        yield server


@pytest.fixture(scope="module")
def chromium():
    """Debian's Chromium driven by Playwright (never a downloaded browser)."""
    from playwright import sync_api

    # `./portgate.sh test` installs Debian's chromium: its absence is a broken setup, not a reason to skip.
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is not installed; run the tests with ./portgate.sh test")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(chromium, live_server):
    """A factory of pages, each in its own browser context (own cookies), closed after the test.

    ``make(**options)`` passes Playwright's context options on (a phone's viewport, touch, no JavaScript…).
    """
    contexts = []

    def make(**options):
        context = chromium.new_context(
            base_url=live_server.url, **{"viewport": {"width": 1280, "height": 900}, **options}
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def answer_human_check(page) -> None:
    """Solve the arithmetic check as a person would: read the question, type the sum."""
    box = page.locator("#f-human_answer")
    a, b = box.get_attribute("data-question").split(" + ")
    box.fill(str(int(a) + int(b)))
