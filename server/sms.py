"""Text messages for phone confirmation, behind a small interface.

No SMS gateway is reachable here, so the default sender records messages to a log file; an
operator plugs a real gateway by implementing :class:`SmsSender` (``send(phone, text)``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Protocol


class SmsSender(Protocol):
    async def send(self, phone: str, text: str) -> None: ...


class FileSmsSender:
    """Appends each message as a JSON line to ``<data_dir>/sms.log``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def send(self, phone: str, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"at": time.time(), "phone": phone, "text": text}) + "\n")
