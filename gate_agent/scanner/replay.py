"""A source that replays image/video files of printed tickets through the real decoder, one file
every ``interval_s`` — for the demo (a newcomer sees scans accepted and refused) and for field tests."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from gate_agent.scanner import OnCode, ScannedCode
from gate_agent.scanner._threads import deliver, join_thread
from gate_agent.scanner.decoders import Decoder, default_decoder
from gate_agent.scanner.files import UnreadableFile, decode_file

log = logging.getLogger(__name__)


class ReplaySource:
    def __init__(
        self,
        paths: Sequence[str | Path],
        decoder: Decoder | None = None,
        interval_s: float = 4.0,
        loop: bool = True,
        name: str = "replay",
    ) -> None:
        if not paths:
            raise ValueError("give at least one file to replay")
        if not interval_s >= 0:
            raise ValueError(f"interval_s must not be negative, not {interval_s!r}")
        self.paths = [Path(p) for p in paths]
        self.decoder = decoder or default_decoder()
        self.interval_s = interval_s
        self.loop = loop
        self.name = name
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, on_code: OnCode) -> None:
        self._thread = threading.Thread(target=self._run, args=(on_code,), name=f"{self.name}-replay", daemon=True)
        self._thread.start()

    def _run(self, on_code: OnCode) -> None:
        while not self._stopping.is_set():
            for path in self.paths:
                if self._stopping.wait(self.interval_s):
                    return
                try:
                    for result in decode_file(path, self.decoder):
                        for code in result.codes:
                            deliver(on_code, ScannedCode(code, self.name, time.monotonic()), log)
                except UnreadableFile as exc:
                    log.warning("cannot replay %s: %s", path, exc)
            if not self.loop:
                return

    def stop(self) -> None:
        self._stopping.set()
        join_thread(self._thread, log)
