"""The gate's decoding pipeline: zxing-cpp first, then targeted second passes within a time budget.

    from gate_agent.scanner.pipeline import FramePipeline

    pipeline = FramePipeline(verify=lambda text: parse_code(text, keys).valid)
    for frame, captured_at in camera:  # BGR, BGRA or grayscale uint8 frames, in order
        code = pipeline.feed(frame, captured_at)  # a verified code, or None

Each frame first goes through zxing-cpp as it is (light-on-dark codes included), then through
second passes, each a treatment and a library aimed at a condition the first pass loses (see
`SECOND_PASSES` for the order and why each is there), until one reads a code or the frame's
time budget (`budget_ms`) is spent. A pass starts only when its measured cost still fits, so a
frame stays within about the budget and the live camera never lags.

Consecutive frames work together rather than each starting over: a ticket held up to the camera
shows in 15-50 frames, so when the budget runs out the next frame picks up the second passes where
this one stopped, and a pass that just read a code goes first again. Each frame is decoded once;
a code is reported the first time it verifies (no second sighting is needed: a verified signature
cannot be a misread).

A library's text is a read only if `verify` accepts it: at the gate, a signature that verifies
with the kiosk's keys or a known short code (the agent passes that check in); by default, text
shaped like a ticket code. Unverified text never ends the search of a frame, so a misread or a
foreign QR code in view cannot hide the ticket's own code behind it.

A forged ticket, or one signed by a key the kiosk has not synced yet, must still reach the lane
(refused as forged, or accepted by the server, which has the key) rather than be silently ignored: with
`unverified_after_s` set, text shaped like a ticket code that does not verify is held back, and
reported once that long has passed in the sighting without a verified code.

`decode(frame)` is the same for callers that want the `Decoder` interface (the codes read in one
frame, as a list).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from gate_agent.scanner import advice, passes
from gate_agent.scanner.decoders import crop_to_roi, to_grayscale, validate_roi
from gate_agent.scanner.verify import UNVERIFIED_AFTER_S, Verify, accept_any, signed_code_verifier, well_formed_code
from gate_core.reasons import Advice

__all__ = ["UNVERIFIED_AFTER_S", "FramePipeline", "Verify", "accept_any", "signed_code_verifier", "well_formed_code"]

#: Per-frame budget of the live camera, ms: within 1/15 s (66.7 ms) per 1280x720 frame on one core, with room
#: left for a pass that runs past its estimate and for the camera's own work on that core. On
#: bench.camera_decode's development seeds 2 and 3 (980 independent frames) the pipeline reads 841 with no
#: budget at all, 835 at 50 ms and 829 at 40 ms; the frames of one sighting also take turns at the passes.
LIVE_BUDGET_MS = 50.0
_COST_WEIGHT = 0.2  # how fast a pass's cost estimate follows its latest timing
_FIRST_TIMING_CAP = 4.0  # a pass's first timing counts for at most this many times its prior
#: A pause between frames this long (s) starts the second passes from the top again: what follows is
#: a new sighting (a camera back after a reconnect, a gate decoding one frame in N), not the same one.
NEW_SIGHTING_AFTER_S = 1.0
#: The grid reader's readings of the last this many seconds of a sighting are read together: a ticket
#: held up moves and turns, and a second is as long as it takes to show another.
SIGHTING_GRID_S = 1.0
_SIGHTING_GRIDS = 12  # and at most this many
#: A code not located for this long (s) has been taken away: the advice for it ends.
_OUT_OF_VIEW_S = 1.5
#: A pass judged too slow for any frame is timed afresh after this many frames (10 s at 15 fps): a busy spell
#: does not shut it out for good, and a pass truly too slow for this core costs a late frame in as many (a few when
#: its prior is far below what it costs here: `_learn_cost` caps its first timing at four times the prior).
RETIME_TOO_SLOW_AFTER = 150
#: A frame smaller than this (px, either side) gets the first pass only.
_SMALLEST_FRAME = 16


class FramePipeline:
    """Reads codes from consecutive frames of one camera; see the module docstring."""

    name = "pipeline"

    def __init__(
        self,
        *,
        verify: Verify = well_formed_code,
        budget_ms: float | None = LIVE_BUDGET_MS,
        roi: Sequence[int] | None = None,
        formats: Sequence[str] | None = ("qrcode",),
        harder: bool = False,
        second_passes: Sequence[str] | None = None,
        clock: Callable[[], float] = time.perf_counter,
        unverified_after_s: float | None = None,
    ) -> None:
        if budget_ms is not None and not budget_ms > 0:
            raise ValueError(f"budget_ms must be a positive number of milliseconds, not {budget_ms!r}")
        self.verify = verify
        # harder: every pass on every frame, whatever it costs (the decode tool's --harder).
        self.budget_ms = None if harder else budget_ms
        self.roi = validate_roi(roi)
        self._first, self._second = passes.build(formats, second_passes)
        names = [name for name, _run in self._second]
        self._grid_index = names.index("grid") if "grid" in names else None
        self._clock = clock
        self._cost_ms: dict[str, float] = {}
        self._skipped_too_slow: dict[str, int] = {}  # frames each pass was skipped as too slow, since last timed
        self._cursor = 0
        self._last_frame_at: float | None = None
        # None: unverified text is never reported; else how long it waits for a verified code.
        self.unverified_after_s = unverified_after_s
        self._held: tuple[str, float] | None = None  # a well-formed code that did not verify, first seen at
        # The grid reader's readings in this sighting and the capture times of their frames, newest last.
        self._grids: list[tuple[float, np.ndarray]] = []
        # The screen's advice (gate_agent.scanner.advice) while a code in view goes unread, else None; since when
        # a code has been in view unread, and when it was last.
        self.advice: Advice | None = None
        self._in_view: tuple[float, float] | None = None
        self._quiet_until = float("-inf")  # no advice before then: a ticket was just read
        # Diagnostics: frames decoded, and how many each pass read (the first pass is "zxing").
        self.frames = 0
        self.reads_by_pass: dict[str, int] = {}
        self.harder_passes = 0  # frames that went on to the second passes

    def feed(self, frame: np.ndarray, now: float) -> str | None:
        """The first verified code in this frame (`now`: its capture time, in seconds), or None."""
        codes = self.read(frame, now)
        return codes[0] if codes else None

    def decode(self, frame: np.ndarray) -> list[str]:
        """The verified codes in this frame (the `Decoder` interface), captured now.

        The frame is a sighting of its own (a still image, a replayed file): when unverified codes
        are reported at all, one found here is reported at once if nothing in the frame verified.
        """
        codes, unverified = self._read(frame, time.monotonic())
        if codes or self.unverified_after_s is None:
            return codes
        self._held = None
        return unverified[:1]

    def read(self, frame: np.ndarray, now: float) -> list[str]:
        """The verified codes the first reading pass found in this frame, captured at `now` (s); or a
        held-back unverified code whose wait is over (see `unverified_after_s`)."""
        codes, unverified = self._read(frame, now)
        if codes:
            self._held = None
            return codes
        return self._held_back(unverified, now)

    def _read(self, frame: np.ndarray, now: float) -> tuple[list[str], list[str]]:
        """The verified codes of this frame's first reading pass, and the well-formed texts that did not verify."""
        started = self._clock()
        gray = to_grayscale(crop_to_roi(frame, self.roi))
        if self._last_frame_at is None or not 0 <= now - self._last_frame_at < NEW_SIGHTING_AFTER_S:
            self._cursor = 0
            self._held = None
            self._grids = []
            self._in_view, self.advice, self._quiet_until = None, None, float("-inf")
        self._grids = [(seen_at, grid) for seen_at, grid in self._grids if now - seen_at < SIGHTING_GRID_S]
        context = passes.FrameContext(gray, sighting=[grid for _seen_at, grid in self._grids], verify=self.verify)
        if self.budget_ms is not None:
            budget_ms = self.budget_ms
            context.time_left = lambda: budget_ms - (self._clock() - started) * 1000
        self._last_frame_at = now
        self.frames += 1
        codes = self._run("zxing", self._first, context)
        if not codes and min(gray.shape) >= _SMALLEST_FRAME:  # a strip of a frame has no code to look for
            self.harder_passes += 1
            codes = self._second_passes(context, started)
        # A read ends the sighting's symbol; otherwise this frame's readings join the next frames'.
        new = [(now, grid) for grid in context.grids]
        self._grids = [] if codes else [*self._grids, *new][-_SIGHTING_GRIDS:]
        self._advise(context, bool(codes), now)
        return codes, context.unverified

    def _advise(self, context: passes.FrameContext, read: bool, now: float) -> None:
        """Follow how long a ticket's code has been in view unread (frames between that locate none keep the
        count: not every frame looks for one), and advise once it is `advice.ADVICE_AFTER_S`."""
        if read:
            self._in_view, self.advice = None, None
            self._quiet_until = now + advice.QUIET_AFTER_READ_S
            return
        if self._in_view is not None and now - self._in_view[1] > _OUT_OF_VIEW_S:
            self._in_view, self.advice = None, None  # taken away: the next ticket starts afresh
        if self._in_view is not None and now - self._in_view[0] > advice.ADVICE_AT_MOST_S:
            self.advice = None  # nobody holds a ticket up that long, until it is taken away
        symbols = [] if context.read_text else context.symbols
        if not symbols or now < self._quiet_until:
            return
        since = now if self._in_view is None else self._in_view[0]
        self._in_view = (since, now)
        if advice.ADVICE_AFTER_S <= now - since <= advice.ADVICE_AT_MOST_S:
            self.advice = advice.advice_for(context.gray, symbols)
        else:
            self.advice = None

    def _held_back(self, unverified: list[str], now: float) -> list[str]:
        """The held unverified code once it has waited `unverified_after_s` in this sighting, else nothing."""
        if self.unverified_after_s is None:
            return []
        if self._held is None and unverified:
            self._held = (unverified[0], now)
        if self._held is not None and now - self._held[1] >= self.unverified_after_s:
            text, self._held = self._held[0], None
            return [text]
        return []

    def _second_passes(self, context: passes.FrameContext, started: float) -> list[str]:
        """Second passes from the cursor on, in turn, each that its cost still fits in the frame's budget (the
        first it skips goes first in the next frame, and the cursor waits there); once the grid
        reader has a reading of this sighting's symbol, or has located a ticket's symbol it could not read (so the
        advice to the driver keeps track of it), it goes first every other frame (another frame may
        complete the reading; the frames between keep the other passes' turns, WeChat's among them, which
        only runs first in a frame)."""
        count, start = len(self._second), self._cursor
        order = [(start + offset) % count for offset in range(count)]
        ahead = self._grid_index if (self._grids or self._in_view) and self.frames % 2 else None
        if ahead is not None:
            order.remove(ahead)
            order.insert(0, ahead)
        tried, waiting = 0, False
        for index in order:
            name, run = self._second[index]
            if self._too_slow(name, context):
                continue  # no frame at this size has the time for it
            if not self._fits(name, context, started, first_in_frame=tried == 0):
                waiting = True  # its turn comes first in the next frame
                continue
            if tried and name in passes.RUN_ALONE and self.budget_ms is not None:
                # Within a budget it only runs first: its turn comes first in the next frame, and this
                # frame goes on with the passes after it.
                waiting = True
                continue
            tried += 1
            codes = self._run(name, run, context)
            if codes:
                self._cursor = 0  # the next ticket starts with the passes that read most
                return codes
            if index != ahead and not waiting:
                self._cursor = (index + 1) % count
        return []

    def _too_slow(self, name: str, context: passes.FrameContext) -> bool:
        """Whether the pass's cost leaves no frame room for it. A busy spell on the box (a full sync, another
        process) can make a pass look that slow: every `RETIME_TOO_SLOW_AFTER` frames it is skipped, its timings
        are forgotten, so it runs again in its turn and is timed afresh."""
        if self.budget_ms is None:
            return False
        if self._cost("zxing", context) + self._cost(name, context) <= self.budget_ms:
            return False
        skipped = self._skipped_too_slow.get(name, 0) + 1
        self._skipped_too_slow[name] = skipped % RETIME_TOO_SLOW_AFTER
        if skipped >= RETIME_TOO_SLOW_AFTER:
            self._cost_ms.pop(name, None)
        return True

    def _cost(self, name: str, context: passes.FrameContext) -> float:
        """The pass's expected ms on this frame: as measured, or its prior until it has run."""
        cost = self._cost_ms.get(name)
        if cost is None:
            return passes.PRIOR_MS_PER_MEGAPIXEL[name] * context.gray.size / 1e6
        return cost

    def _fits(self, name: str, context: passes.FrameContext, started: float, *, first_in_frame: bool) -> bool:
        """Whether the pass's expected cost fits what is left of this frame's budget."""
        if self.budget_ms is None or first_in_frame:
            # Not too slow for a frame (checked before), so the first one always runs: every frame
            # moves the turn on, whatever its first pass cost.
            return True
        needs = max(self._cost(name, context), passes.LEAST_MS.get(name, 0.0))
        return (self._clock() - started) * 1000 + needs <= self.budget_ms

    def _run(self, name: str, run: passes.Pass, context: passes.FrameContext) -> list[str]:
        started = self._clock()
        texts = run(context)
        context.read_text = context.read_text or bool(texts)
        self._learn_cost(name, (self._clock() - started) * 1000, context)
        codes = [text for text in texts if self.verify(text)]
        context.unverified.extend(text for text in texts if text not in codes and well_formed_code(text))
        if codes:
            self.reads_by_pass[name] = self.reads_by_pass.get(name, 0) + 1
        return codes

    def _learn_cost(self, name: str, elapsed_ms: float, context: passes.FrameContext) -> None:
        """Follow the pass's timings, but let one slow frame (the box busy with something else) at
        most double the estimate (a pass judged too slow for any frame is timed again only when `_too_slow` forgets
        its timings)."""
        previous = self._cost_ms.get(name)
        if previous is None:
            # Priors are for a fast x86 core; a Pi-class core may be several times slower.
            previous = elapsed_ms = min(elapsed_ms, _FIRST_TIMING_CAP * self._cost(name, context))
        elapsed_ms = min(elapsed_ms, 2 * previous)
        self._cost_ms[name] = previous + _COST_WEIGHT * (elapsed_ms - previous)

    def cost_estimates_ms(self) -> dict[str, float]:
        """What each pass has been costing per frame (ms), for diagnostics and the benchmark."""
        return {name: round(cost, 2) for name, cost in self._cost_ms.items()}
