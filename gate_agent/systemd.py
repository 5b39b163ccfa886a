"""sd_notify for ``Type=notify`` units with a watchdog; silently does nothing outside systemd."""

from __future__ import annotations

import asyncio
import os
import socket


def _notify(message: str) -> None:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(message.encode())


def notify_ready() -> None:
    _notify("READY=1")
    usec = os.environ.get("WATCHDOG_USEC")
    if usec and usec.isdigit():
        asyncio.get_running_loop().create_task(_watchdog(int(usec) / 2_000_000))


async def _watchdog(interval: float) -> None:
    """Ping systemd while the event loop is alive; a stuck loop stops pinging and gets restarted."""
    while True:
        _notify("WATCHDOG=1")
        await asyncio.sleep(interval)
