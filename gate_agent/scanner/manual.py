"""Codes typed on the kiosk screen or by a keyboard-wedge scanner into its input field."""

from __future__ import annotations

import logging
import queue
import threading
import time

from gate_agent.scanner import OnCode, ScannedCode
from gate_agent.scanner._threads import STOP_TIMEOUT_S, deliver, join_thread
from kiosk_ui.typed_code import MAX_CODE_LENGTH, InvalidManualCode, clean_manual_code

# The rules for a typed code are the lane screen's (it checks them itself); this source keeps to them.
__all__ = ["MAX_CODE_LENGTH", "InvalidManualCode", "ManualSource", "clean_manual_code"]

log = logging.getLogger(__name__)


class ManualSource:
    """A CodeSource fed by `submit`, called by the kiosk screen's input field.

    `submit` validates in the caller's thread (so the screen can show the error at once)
    and queues the code; like every source, `on_code` is called from this source's own
    thread, never from the UI's.
    """

    def __init__(self, name: str = "manual", max_pending: int = 100) -> None:
        self.name = name
        self._pending: queue.Queue[ScannedCode | None] = queue.Queue(max_pending)
        self._thread: threading.Thread | None = None

    def start(self, on_code: OnCode) -> None:
        if self._thread is not None:
            raise RuntimeError("ManualSource is already started")
        self._thread = threading.Thread(
            target=self._deliver_loop, args=(on_code,), name=f"scanner-{self.name}", daemon=True
        )
        self._thread.start()

    def submit(self, text: str) -> ScannedCode:
        """Validate and queue one typed code; returns what will be handed to on_code."""
        if self._thread is None:
            raise RuntimeError("ManualSource.submit called before start")
        scanned = ScannedCode(clean_manual_code(text), self.name, time.monotonic())
        try:
            self._pending.put_nowait(scanned)
        except queue.Full:
            raise InvalidManualCode("busy", "too many codes are waiting; try again") from None
        return scanned

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        try:
            self._pending.put(None, timeout=STOP_TIMEOUT_S)
        except queue.Full:  # on_code is stuck; the daemon thread is abandoned
            log.warning("manual entry queue still full at stop")
        join_thread(thread, log)

    def _deliver_loop(self, on_code: OnCode) -> None:
        while (scanned := self._pending.get()) is not None:
            deliver(on_code, scanned, log)
