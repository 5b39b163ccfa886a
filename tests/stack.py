"""Real processes for end-to-end tests: the server (``python -m server.cli``) and gate agents
(``python -m gate_agent.cli run``), plus a browser-like HTTP user to drive the portal."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp

from server.demo import DEMO_PASSWORD
from tests.conftest import free_port
from tests.dbaccess import db_rows

ROOT = Path(__file__).resolve().parent.parent


def _wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not come up in {timeout} s")


class ServerProcess:
    """The real server with demo data on a loopback port; restartable on the same data.

    ``database_url`` (the ``database_url`` fixture's value): empty for the SQLite file under
    ``data_dir``, or a PostgreSQL database, handed to the process in ``PORTGATE_DATABASE_URL``.
    """

    def __init__(self, data_dir: Path, port: int | None = None, database_url: str = "") -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = data_dir.parent / f"server-{self.port}.log"

    def start(self) -> ServerProcess:
        env = {**os.environ, "PORTGATE_SECURITY__SECRET_KEY": "e2e-secret", "PORTGATE_MAIL__BACKEND": "folder"}
        if self.database_url:
            env["PORTGATE_DATABASE_URL"] = self.database_url
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "server.cli",
                    "--demo",
                    "--data-dir",
                    str(self.data_dir),
                    "--port",
                    str(self.port),
                ],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        _wait_http(self.url + "/healthz")
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def db_rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        return db_rows(self.database_url or self.data_dir / "portgate.db", sql, params)


class AgentProcess:
    """A real gate agent process; its kiosk screen's WebSocket is where verdicts are read."""

    def __init__(
        self, server_url: str, data_dir: Path, scanners: list[dict[str, Any]] | None = None, **settings: Any
    ) -> None:
        self.server_url = server_url
        self.data_dir = data_dir
        self.ui_port = free_port()
        self.scanners = scanners or []
        self.settings = settings
        self.proc: subprocess.Popen | None = None
        self.config = data_dir / "agent.toml"
        self.log = data_dir / "agent.log"

    def write_config(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        lines = [f'server_url = "{self.server_url}"', f'data_dir = "{self.data_dir}"', f"ui_port = {self.ui_port}"]
        lines += [f"{k} = {json.dumps(v)}" for k, v in self.settings.items()]
        for scanner in self.scanners:
            lines.append("[[scanner]]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in scanner.items()]
        self.config.write_text("\n".join(lines) + "\n")

    def enrol(self, code: str) -> subprocess.CompletedProcess:
        self.write_config()
        return subprocess.run(
            [sys.executable, "-m", "gate_agent.cli", "enrol", "--config", str(self.config), "--code", code],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def start(self) -> AgentProcess:
        # free_port() only finds a port free for now: another test's process may take it before the agent binds
        # it, and then that process answers on it. Wait for the agent's own word, and take another port if need be.
        for _attempt in range(3):
            self.write_config()
            listening = re.compile(rf"kiosk screen on http://[^\s]*:{self.ui_port}/")
            before = len(listening.findall(self._log_text()))
            with self.log.open("ab") as out:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "gate_agent.cli", "run", "--config", str(self.config)],
                    cwd=ROOT,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.proc.poll() is None:
                if len(listening.findall(self._log_text())) > before:
                    _wait_http(f"http://127.0.0.1:{self.ui_port}/")
                    return self
                time.sleep(0.05)
            if self.proc.poll() is None or "address already in use" not in self._log_text()[-2000:]:
                self.stop()  # not left running (holding its port and files) for the tests after
                raise AssertionError(f"the agent did not start:\n{self._log_text()[-3000:]}")
            self.ui_port = free_port()
        raise AssertionError(f"the agent found no free port for its screen:\n{self._log_text()[-3000:]}")

    def _log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill9(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def outbox(self) -> list[tuple]:
        import sqlite3

        with sqlite3.connect(self.data_dir / "agent.db", timeout=10) as conn:
            return conn.execute(
                "SELECT scan_id, accepted, reason, uploaded_at FROM outbox ORDER BY created_at"
            ).fetchall()


class KioskScreen:
    """Reads the kiosk page's WebSocket like the browser does, and types codes into it."""

    def __init__(self, agent: AgentProcess) -> None:
        self.url = f"http://127.0.0.1:{agent.ui_port}/ws"
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.status: dict[str, Any] = {}

    async def __aenter__(self) -> KioskScreen:
        self.session = aiohttp.ClientSession()
        self.ws = await self.session.ws_connect(self.url)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.ws.close()
        await self.session.close()

    async def type_code(self, code: str) -> None:
        await self.ws.send_json({"type": "manual", "code": code})

    async def next_verdict(self, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("no verdict on the kiosk screen in time")
            message = await self.ws.receive_json(timeout=remaining)
            if message.get("type") == "status":
                self.status = message
            if message.get("type") == "verdict":
                return message

    async def wait_status(self, predicate, timeout: float = 15.0) -> dict[str, Any]:  # noqa: ANN001
        deadline = time.monotonic() + timeout
        if self.status and predicate(self.status):
            return self.status
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"kiosk status never matched; last {self.status}")
            try:
                message = await self.ws.receive_json(timeout=min(remaining, 1.0))
            except TimeoutError:
                continue
            if message.get("type") == "status":
                self.status = message
                if predicate(message):
                    return message


class PortalUser:
    """A person using the web portal over real HTTP (cookies, CSRF, the human check)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = aiohttp.ClientSession(base_url=base_url, cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def close(self) -> None:
        await self.session.close()

    async def form(self, path: str) -> tuple[str, dict[str, str]]:
        from tests.helpers import hidden_fields

        async with self.session.get(path) as resp:
            page = await resp.text()
        return page, hidden_fields(page)

    async def login(self, username: str, company: str | None = None) -> None:
        _page, hidden = await self.form("/login")
        async with self.session.post("/login", data={**hidden, "login": username, "password": DEMO_PASSWORD}) as r:
            assert r.status == 200, await r.text()
        if company:
            page, hidden = await self.form("/profiles")
            profile = re.search(
                rf'value="(\d+)"[^>]*>\s*<strong>[^<]*</strong> — <span class="company">'
                rf"{re.escape(company)}",
                page,
            )[1]
            async with self.session.post("/profiles", data={**hidden, "profile_id": profile}) as r:
                assert r.status == 200

    async def create_kiosk(self, name: str) -> str:
        """As the gate supervisor: create a kiosk and read its one-time enrolment code."""
        _page, hidden = await self.form("/gate/kiosks")
        async with self.session.post("/gate/kiosks", data={**hidden, "name": name, "gate": "Garita 1"}) as r:
            page = await r.text()
        return re.search(r'id="enrol-code"[^>]*>([^<]+)<', page)[1].strip()

    async def post(self, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        _page, hidden = await self.form("/home")
        data = {**hidden, **kwargs}
        return await self.session.post(path, data=data)


async def wait_until(predicate, timeout: float = 15.0, interval: float = 0.1) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(interval)
    raise AssertionError("condition not reached in time")
