"""The server as systemd runs it: one process per port (``portgate-server@.service``), ``Type=notify``.

Real processes: ``python -m server.cli`` on a free port, with a real datagram socket standing in for
systemd's notify socket, as systemd itself would pass it (``NOTIFY_SOCKET``, ``WATCHDOG_USEC``).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from server.app import load_secret
from server.config import load_config
from tests.conftest import free_port

pytestmark = [pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parent.parent


class NotifySocket:
    """Where systemd would listen for ``sd_notify`` datagrams (AF_UNIX paths are short: under /tmp)."""

    def __init__(self) -> None:
        self._dir = tempfile.mkdtemp(prefix="pgn-", dir="/tmp")
        self.path = os.path.join(self._dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages: list[str] = []

    def receive(self, timeout: float) -> str | None:
        self.sock.settimeout(timeout)
        try:
            message = self.sock.recv(4096).decode()
        except TimeoutError:
            return None
        self.messages.append(message)
        return message

    def wait_for(self, wanted: str, timeout: float, proc: subprocess.Popen, log: Path) -> None:
        deadline = time.monotonic() + timeout
        while wanted not in self.messages:
            if proc.poll() is not None:
                raise AssertionError(f"the server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {wanted} from the server; got {self.messages}")
            self.receive(0.5)

    def close(self) -> None:
        self.sock.close()
        os.unlink(self.path)
        os.rmdir(self._dir)


def start_server(data_dir: Path, port: int, notify: NotifySocket, log: Path, **env: str) -> subprocess.Popen:
    environ = {**os.environ, "NOTIFY_SOCKET": notify.path, "PORTGATE_MAIL__BACKEND": "folder", **env}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "server.cli", "--data-dir", str(data_dir), "--port", str(port)],
            cwd=ROOT,
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def test_ready_when_it_answers_watchdog_pings_and_a_clean_stop(tmp_path):
    notify, port, log = NotifySocket(), free_port(), tmp_path / "server.log"
    proc = start_server(tmp_path / "data", port, notify, log, WATCHDOG_USEC="1000000")
    try:
        notify.wait_for("READY=1", 90, proc, log)
        # Ready means ready: the first request after READY=1 is answered (HAProxy and systemd trust it).
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            assert resp.status == 200
        # Pings every WATCHDOG_USEC / 2 while the event loop runs.
        before = notify.messages.count("WATCHDOG=1")
        deadline = time.monotonic() + 3
        while notify.messages.count("WATCHDOG=1") < before + 2 and time.monotonic() < deadline:
            notify.receive(0.5)
        assert notify.messages.count("WATCHDOG=1") >= before + 2
        # A stuck event loop stops pinging, so systemd (WatchdogSec) restarts the instance.
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            while notify.receive(0.2) is not None:  # what was already sent
                pass
            assert notify.receive(1.5) is None
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        while notify.receive(0.1) is not None:
            pass
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        notify.close()
    assert notify.messages.count("READY=1") == 1
    assert "STOPPING=1" in notify.messages
    assert "Traceback" not in log.read_text()
    assert (tmp_path / "data" / "secret.key").stat().st_mode & 0o777 == 0o600


def test_a_port_already_in_use_stops_the_server_with_a_message(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "server.cli", "--data-dir", str(tmp_path), "--port", str(port)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert "cannot start" in result.stderr


def test_the_workers_flag_is_gone(tmp_path):
    """Several processes are several systemd instances now; the old flag is refused, not ignored."""
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "--workers", "2", "--data-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "error" in result.stderr


def _read_secret(data_dir: str, queue) -> None:  # noqa: ANN001 - runs in a child process
    queue.put(load_secret(load_config(data_dir=data_dir, environ={})))


def test_processes_starting_together_share_one_secret_key(tmp_path):
    """Several instances on one machine may share a data folder: they agree on one secret key."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    children = [context.Process(target=_read_secret, args=(str(tmp_path), queue)) for _ in range(6)]
    for child in children:
        child.start()
    secrets = {queue.get(timeout=30) for _ in children}
    for child in children:
        child.join(30)
    assert len(secrets) == 1 and len(secrets.pop()) == 64
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]
