"""A real HAProxy in front of server nodes, for the multi-node tests (Debian package ``haproxy``).

The configuration is the shipped example's (``systemd/haproxy.cfg.example``): its ``defaults``,
``frontend`` and ``backend`` sections, with the frontend on a free loopback port and one ``server``
line per node. Only ``global`` is the test's own: no chroot, no daemon, no stats socket under /run,
so any user can start it (started by root, it drops to ``nobody``), and it dies with the test
(``-db``: in the foreground).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.mailbox import free_port

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "systemd" / "haproxy.cfg.example"

_GLOBAL = "global\n    maxconn 2000\n"


def available() -> bool:
    return shutil.which("haproxy") is not None


def config_for(port: int, nodes: dict[str, int]) -> str:
    """The example's sections, listening on ``port`` and balancing over ``nodes`` (name → port)."""
    text = EXAMPLE.read_text()
    body = text[text.index("\ndefaults") + 1 :]
    body = re.sub(r"(?m)^    log global\n", "", body)  # no syslog socket in a test
    body = re.sub(r"(?m)^    bind .*$", f"    bind 127.0.0.1:{port}", body)
    body = re.sub(r"(?m)^    server .*\n", "", body)
    servers = "".join(f"    server {name} 127.0.0.1:{node_port} check\n" for name, node_port in nodes.items())
    # Started by root (CI containers), it binds its port and then runs as nobody, as a packaged one would.
    dropped = "    user nobody\n    group nogroup\n" if os.getuid() == 0 else ""
    return _GLOBAL + dropped + "\n" + body.rstrip("\n") + "\n" + servers


class Balancer:
    """HAProxy on ``127.0.0.1:<port>`` balancing over server nodes on loopback."""

    def __init__(self, base: Path, nodes: dict[str, int]) -> None:
        self.base = base
        self.nodes = nodes
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = base / "haproxy.cfg"
        self.log = base / "haproxy.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Balancer:
        self.base.mkdir(parents=True, exist_ok=True)
        self.config.write_text(config_for(self.port, self.nodes))
        check = subprocess.run(["haproxy", "-c", "-q", "-f", str(self.config)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"haproxy refused {self.config}:\n{check.stdout}{check.stderr}")
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                ["haproxy", "-db", "-f", str(self.config)], stdout=out, stderr=subprocess.STDOUT
            )
        self._wait_listening()
        return self

    def _wait_listening(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                assert self.proc is not None
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"haproxy did not listen:\n{self.log.read_text()[-2000:]}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
