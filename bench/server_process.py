"""Run the real ``portgate-server`` as a subprocess for a benchmark, and enrol kiosks on it."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from bench.seed import ensure_gate_licence
from server.db import direct_connection
from server.gate.kiosks import create_kiosk


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_server(data_dir: str | Path, *, timeout: float = 60.0, database_url: str = "") -> Iterator[str]:
    """Start the server on a free loopback port with ``data_dir``; yields its base URL."""
    with server_process(data_dir, timeout=timeout, database_url=database_url) as (base, _process):
        yield base


def _process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(process: subprocess.Popen) -> float:
    """CPU time (user + system, all threads) the server process has used so far (Linux)."""
    return _process_cpu(process.pid)


@contextlib.contextmanager
def server_process(
    data_dir: str | Path, *, timeout: float = 60.0, database_url: str = "", port: int | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Like :func:`running_server`, also yielding the process (to read its CPU time).

    ``database_url`` empty: the SQLite file under ``data_dir``. Several processes on one PostgreSQL
    database are several calls with the same URL (each its own port).
    """
    port = port or free_port()
    env = {**os.environ, "PORTGATE_LOG_LEVEL": "WARNING", "PORTGATE_SECURITY__SECRET_KEY": "bench-secret"}
    if database_url:
        env["PORTGATE_DATABASE_URL"] = database_url
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server.cli",
            "--data-dir",
            str(data_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}")
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the server did not start in time") from None
                time.sleep(0.2)
        yield base, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def enrol_kiosk(base: str, db_path: str | Path, name: str) -> str:
    """Create a kiosk as a supervisor would and enrol it through the API; returns its token.

    ``db_path``: the SQLite file or any database URL. The database gets an operator licence serial
    for gate kiosks first if it has none.
    """
    ensure_gate_licence(db_path)
    with direct_connection(db_path) as db:
        db.execute(db.dialect.begin)
        _kiosk_id, code = create_kiosk(db, {"name": name, "gate": "bench"}, None, datetime.now(UTC))
        db.execute("COMMIT")
    request = urllib.request.Request(
        f"{base}/api/v1/gate/enrol",
        data=json.dumps({"enrol_code": code, "fingerprint": "bench", "agent_version": "bench"}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())["token"]
