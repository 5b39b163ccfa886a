"""Small helpers shared by the threaded code sources."""

from __future__ import annotations

import logging
import threading

from gate_agent.scanner import OnCode, ScannedCode

STOP_TIMEOUT_S = 2.0


def deliver(on_code: OnCode, scanned: ScannedCode, log: logging.Logger) -> None:
    """Call the consumer; a failing consumer is logged, never allowed to kill the reader."""
    try:
        on_code(scanned)
    except Exception:
        log.exception("on_code failed for a code from %s", scanned.source)


def join_thread(thread: threading.Thread | None, log: logging.Logger) -> None:
    """Wait up to STOP_TIMEOUT_S for a worker thread; it is a daemon, so a stuck one is left."""
    if thread is None or thread is threading.current_thread():
        return
    thread.join(STOP_TIMEOUT_S)
    if thread.is_alive():
        log.warning("%s did not stop within %.1f s", thread.name, STOP_TIMEOUT_S)
