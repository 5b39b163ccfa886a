"""The PDF renderer process lives and dies with its server: a server killed outright (``kill -9``, the OOM
killer, a power-off of its container) leaves no renderer behind holding memory and a CPU share.

Real processes: the server (``python -m server.cli --demo``) prints a ticket over HTTP, which starts its
renderer; the test finds the server's child processes in ``/proc``.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from tests.stack import PortalUser, ServerProcess

pytestmark = [pytest.mark.timeout(120)]

#: How long a renderer may outlive its server: the kernel signals it as the server dies, so this is
#: only the time a busy box takes to run the signal.
GONE_WITHIN_SECONDS = 5.0


def _children(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (read from ``/proc``, as ``ps --ppid`` does)."""
    children = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses; the fields after its last ")".
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            children.add(int(entry.name))
    return children


def _alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped by init, counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def _print_a_ticket(server: ServerProcess) -> None:
    customer = PortalUser(server.url)
    try:
        await customer.login("andina", company="Exportadora Andina S.A.")
        async with customer.session.get("/tickets") as resp:
            itinerary = re.search(r"/tickets/itinerary/(\d+)", await resp.text())[1]
        async with customer.session.get(f"/tickets/itinerary/{itinerary}") as resp:
            ticket_id = re.search(r'data-ticket="(\d+)"', await resp.text())[1]
        async with await customer.post(f"/tickets/{ticket_id}/print") as resp:
            assert resp.content_type == "application/pdf", await resp.text()
            assert (await resp.read()).startswith(b"%PDF")
    finally:
        await customer.close()


async def test_a_killed_server_leaves_no_pdf_renderer_behind(tmp_path):
    server = ServerProcess(tmp_path / "data").start()
    renderers: set[int] = set()
    try:
        assert server.proc is not None
        await _print_a_ticket(server)
        renderers = _children(server.proc.pid)
        assert renderers, "printing started no renderer process"
        server.proc.kill()
        server.proc.wait()
        deadline = time.monotonic() + GONE_WITHIN_SECONDS
        while any(_alive(pid) for pid in renderers) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = {pid: Path(f"/proc/{pid}/cmdline").read_bytes() for pid in renderers if _alive(pid)}
        assert not left, f"still running {GONE_WITHIN_SECONDS} s after the server was killed: {left}"
    finally:
        server.stop()
        for pid in renderers:  # whatever a failed run left: this test's own children's children
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
