"""Scanners: anything that yields code strings (camera, serial scanner, keyboard entry).

The decision never learns where a code came from; every source hands over a
`ScannedCode` through the same `CodeSource` interface. Source implementations live in
submodules (`camera`, `serial_reader`, `manual`) so that importing this package does not
pull in OpenCV or pyserial.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from gate_core.codes import normalize_code

__all__ = ["CodeSource", "Deduplicator", "OnCode", "ScannedCode"]


@dataclass(frozen=True, slots=True)
class ScannedCode:
    """One code as read by a source, stamped with the monotonic time of the read itself."""

    code: str
    source: str
    read_at_monotonic: float


OnCode = Callable[[ScannedCode], None]


@runtime_checkable
class CodeSource(Protocol):
    """Something that yields codes.

    `start` returns at once: the source runs its own daemon thread and calls `on_code`
    from it, so `on_code` must be thread-safe and quick (hand the code over, do not
    decide on it inline). `stop` ends the thread and returns within about two seconds.
    """

    def start(self, on_code: OnCode) -> None: ...

    def stop(self) -> None: ...


class Deduplicator:
    """Treats the same code read again within `window_s` as one scan, not two.

    The window runs from the first accepted sighting and is not restarted by repeat
    sightings: a ticket left under the camera is accepted again once per window, as a
    fresh attempt, rather than never. Entries older than the window are pruned, so
    memory stays bounded by the scan rate (and by `max_entries` in any case).
    """

    def __init__(
        self,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 10_000,
    ) -> None:
        if not window_s > 0:
            raise ValueError(f"window_s must be a positive number of seconds, not {window_s!r}")
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, not {max_entries!r}")
        self.window_s = float(window_s)
        self._clock = clock
        self._max_entries = max_entries
        self._accepted_at: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()  # sources call in from their own threads

    def accept(self, code: str, now: float | None = None) -> bool:
        """True when `code` is a new scan; pass a scan's own read time as `now` if known. A ticket's code
        in either form (gate_core.codes: the QR's decimal form, the base 32 text) is one code."""
        code = normalize_code(code) or code
        with self._lock:
            if now is None:
                now = self._clock()
            self._prune(now)
            accepted_at = self._accepted_at.get(code)
            if accepted_at is not None and now - accepted_at < self.window_s:
                return False
            self._accepted_at.pop(code, None)
            self._accepted_at[code] = now
            while len(self._accepted_at) > self._max_entries:
                self._accepted_at.popitem(last=False)
            return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._accepted_at)

    def _prune(self, now: float) -> None:
        # Entries are kept in acceptance order, so the expired ones are at the front.
        while self._accepted_at:
            oldest_code, accepted_at = next(iter(self._accepted_at.items()))
            if now - accepted_at < self.window_s:
                break
            del self._accepted_at[oldest_code]
