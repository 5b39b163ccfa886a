"""``portgate-server init``: a real installation starts from an empty data folder with one
documented command, then the first administrator signs in and a kiosk can enrol on the gate
licence it made (real processes: the command, the server, an agent)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import free_port
from tests.helpers import get_form, login
from tests.stack import ROOT, AgentProcess, _wait_http

pytestmark = [pytest.mark.timeout(120)]

PASSWORD = "Muelle2026seguro"
INIT = [
    "--operator-name",
    "Terminal Portuaria del Sur S.A.",
    "--operator-tax-id",
    "0990001234001",
    "--admin-login",
    "jefe",
    "--admin-email",
    "jefe@tps.example",
    "--password-stdin",
]


def init(data_dir: Path, *options: str, password: str = PASSWORD) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "server.cli", "init", "--data-dir", str(data_dir), *options]
    return subprocess.run(command, cwd=ROOT, input=password + "\n", capture_output=True, text=True, timeout=60)


def rows(data_dir: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(data_dir / "portgate.db") as conn:
        return conn.execute(sql).fetchall()


def test_bad_values_are_refused_naming_the_option_and_write_nothing(tmp_path):
    data_dir = tmp_path / "data"
    bad = [
        *("--operator-name", "", "--operator-tax-id", "12", "--admin-login", "a b", "--admin-email", "nope"),
        *("--gate-machines", "0", "--licence-until", "2020-01-01", "--password-stdin"),
    ]
    result = init(data_dir, *bad, password="corta")
    assert result.returncode == 2, result.stderr
    for option in (
        "--operator-name",
        "--operator-tax-id",
        "--admin-login",
        "--admin-email",
        "--gate-machines",
        "--licence-until",
        "--password-stdin",
    ):
        assert f"init: {option}: " in result.stderr, option
    assert "Traceback" not in result.stderr
    assert not data_dir.exists()
    # The password never comes from the command line.
    result = init(data_dir, *INIT[:-1])
    assert result.returncode == 2 and "--password-stdin" in result.stderr and not data_dir.exists()


async def test_init_once_then_the_admin_signs_in_and_a_kiosk_enrols_on_the_gate_licence(tmp_path):
    data_dir = tmp_path / "data"
    result = init(data_dir, *INIT, "--gate-machines", "2")
    assert result.returncode == 0, result.stderr
    (serial,) = rows(data_dir, "SELECT serial FROM serials")[0]
    assert serial in result.stdout and "jefe" in result.stdout
    assert rows(data_dir, "SELECT kind, tax_id FROM companies") == [("operator", "0990001234001")]
    assert rows(data_dir, "SELECT max_machines, system FROM serials") == [(2, "Portgate Gate")]

    again = init(data_dir, *INIT)
    assert again.returncode == 3 and "already set up" in again.stderr
    assert rows(data_dir, "SELECT COUNT(*) FROM users") == [(1,)]

    port = free_port()
    env = {**os.environ, "PORTGATE_MAIL__BACKEND": "folder"}
    command = [sys.executable, "-m", "server.cli", "--data-dir", str(data_dir), "--port", str(port)]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        await asyncio.to_thread(_wait_http, url + "/healthz")
        async with aiohttp.ClientSession(base_url=url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as admin:
            await login(admin, "jefe", PASSWORD)
            page, hidden = await get_form(admin, "/gate/kiosks")
            resp = await admin.post("/gate/kiosks", data={**hidden, "name": "Garita Sur 1", "gate": "Sur"})
            code = _enrol_code(await resp.text())
        agent = AgentProcess(url, tmp_path / "kiosk")
        enrolled = await asyncio.to_thread(agent.enrol, code)
        assert enrolled.returncode == 0, enrolled.stderr
        assert rows(data_dir, "SELECT COUNT(*) FROM machines WHERE active = 1") == [(1,)]
    finally:
        server.terminate()
        server.wait(15)


def _enrol_code(page: str) -> str:
    import re

    return re.search(r'id="enrol-code"[^>]*>([^<]+)<', page)[1].strip()
