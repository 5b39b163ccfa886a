"""The README's first command past its installs: the whole system on embedded defaults, then stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

pytestmark = [pytest.mark.timeout(180)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def _until(check, seconds: float) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.3)
    return False


def test_the_demo_comes_up_whole_and_sigterm_stops_all_of_it(tmp_path):
    port, ui_port = _free_port(), _free_port()
    portal, kiosk = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{ui_port}/"
    stack = subprocess.Popen(
        [sys.executable, "-m", "server.demo_stack", "--data-dir", str(tmp_path / "data"), "--port", str(port)]
        + ["--ui-port", str(ui_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: whatever it leaves behind is found and killed
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(stack.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        assert _until(lambda: any("Stop with Ctrl-C" in line for line in lines), 120), "".join(lines)
        output = "".join(lines)
        assert f"{portal}/login" in output and "demo2026pass" in output and kiosk in output
        assert _answers(f"{portal}/healthz") and _answers(f"{portal}/login") and _answers(kiosk)
        assert _answers(f"{portal}/api/v1/openapi.json")
        stack.send_signal(signal.SIGTERM)  # as systemd, `timeout` or a closed terminal would
        stack.wait(timeout=60)
        # Nothing left running: both ports are free again.
        stopped = _until(lambda: not _answers(f"{portal}/healthz") and not _answers(kiosk), 15)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(stack.pid, signal.SIGKILL)
        stack.wait()
        reader.join(timeout=10)
        stack.stdout.close()  # type: ignore[union-attr]
    assert stopped, "the server or the agent was left running"
