"""sd_notify for ``Type=notify`` units with a watchdog; silently does nothing outside systemd."""

from __future__ import annotations

import asyncio
import os
import socket


def notify(message: str) -> None:
    """Send one sd_notify message (``READY=1``, ``WATCHDOG=1``, ``STOPPING=1``…) if systemd listens."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(message.encode())


def watchdog_interval() -> float | None:
    """Seconds between watchdog pings (half of systemd's ``WatchdogSec``), or None without a watchdog."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None  # the watchdog is meant for another process (e.g. our parent)
    return int(usec) / 2_000_000


def notify_ready() -> None:
    notify("READY=1")
    interval = watchdog_interval()
    if interval is not None:
        asyncio.get_running_loop().create_task(_watchdog(interval))


async def _watchdog(interval: float) -> None:
    """Ping systemd while the event loop is alive; a stuck loop stops pinging and gets restarted."""
    while True:
        notify("WATCHDOG=1")
        await asyncio.sleep(interval)
