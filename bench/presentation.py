"""Presentation benchmark: how soon a ticket held up to the kiosk camera gets a verdict.

    python -m bench.presentation [--sequences N] [--seed S] [--quick]

A driver holds a ticket up for a second or two: it comes into the frame, slows down, settles with the hand's
tremor, turns a little. Each sequence is a video (10, 15 or 30 fps, 2 s) of a real printed ticket (or a phone)
through bench.camera_model, under one condition at a severity a person still reads (1 and 2 of
bench.camera_conditions; 3 is beyond that for several of them), at 640x480 or 1280x720.

The frames reach the decoder the way the agent's camera scanner hands them over: a capture slot keeps only the
newest frame, so while a frame is being decoded the frames that arrive meanwhile are dropped but the newest. The
clock is the video's, advanced by each decode's CPU time in this thread (OpenCV kept to this thread), as on a
core of its own: on a shared box wall-clock time would count the waits for a core. A verdict is the first read
the kiosk verifies (the signature with the ticket's key, or its known short code). Time runs from the first
frame with the whole code in view. Of the sequences not read within the second, the report counts those where
the lane screen advised the driver (gate_agent.scanner.advice: tilt the ticket, hold it flat and still) before the
two seconds ended. The decoder is the agent's live pipeline
(``gate_agent.scanner.pipeline.FramePipeline``, which combines consecutive frames) or, where that does not
exist, ``default_decoder()`` frame by frame.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import cv2
import numpy as np

from bench.camera_conditions import CONDITIONS, SIZES, draw_shot
from bench.camera_decode import HELD_OUT_SEEDS
from bench.camera_model import REFERENCE_QR_MM, Shot, aim, photograph
from bench.camera_scene import SCREEN_QR_MM, project
from bench.ticket_prints import PrintedTicket, ticket_pool
from gate_core.codes import keyring, parse_code

DURATION_S = 2.0
FRAME_RATES = (10.0, 15.0, 30.0)
READABLE_SEVERITIES = (1, 2)  # what a person still reads in every condition
DEADLINE_S = 1.0
#: The default run: 132 sequences (about 5 minutes on one core), so one sequence is 0.8 % of the figure; with 66
#: the figure can only be 100, 98.5 or less, too coarse for a target of 99. The first 66 are the same either way.
SEQUENCES_PER_CELL = 4

Feed = Callable[[np.ndarray, float], list[str]]


def live_decoder(verify: Callable[[str], bool]) -> tuple[str, Feed, Callable[[], str | None]]:
    """The agent's live decoding loop (its frame-combining pipeline when it has one, else the frame decoder), and
    what the lane screen would advise the driver after the last frame (gate_agent.scanner.advice), if anything."""
    try:
        from gate_agent.scanner.pipeline import FramePipeline
    except ImportError:
        from gate_agent.scanner.decoders import default_decoder

        decoder = default_decoder(formats=("qrcode",))
        return decoder.name, lambda frame, _now: decoder.decode(frame), lambda: None
    # Budgeted on this thread's CPU time, as the clock below advances: see the module docstring.
    pipeline = FramePipeline(verify=verify, clock=time.thread_time)

    def feed(frame: np.ndarray, now: float) -> list[str]:
        code = pipeline.feed(frame, now)
        return [code] if code else []

    return "FramePipeline", feed, lambda: pipeline.advice


@dataclass(frozen=True)
class Presentation:
    """One sequence: a condition's shot, how the ticket comes in and settles, and the video's frame rate."""

    condition: str
    severity: int
    shot: Shot
    fps: float
    start: tuple[float, float]  # the QR's centre (px) when the ticket starts coming in, outside the frame
    rest: tuple[float, float]  # where it settles
    arrive_s: float  # how long coming in takes
    tremor_hz: float
    roll_drift_deg: float

    def shot_at(self, t: float) -> Shot:
        """The shot at time ``t``: position, distance, roll and the motion blur of the movement then."""
        position, velocity = self._position(t)
        approach = 0.8 + 0.2 * min(1.0, t / self.arrive_s)  # it also comes closer while coming in
        return replace(
            self.shot,
            centre_px=(float(position[0]), float(position[1])),
            code_px=self.shot.code_px * approach,
            roll_deg=self.shot.roll_deg + self.roll_drift_deg * min(1.0, t / DURATION_S),
            speed_px_s=float(np.hypot(*velocity)),
            motion_angle_deg=math.degrees(math.atan2(velocity[1], velocity[0])),
        )

    def _position(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        start, rest = np.float64(self.start), np.float64(self.rest)
        u = min(1.0, t / self.arrive_s)
        ease = 1 - (1 - u) ** 3  # decelerating into place
        speed = 3 * (1 - u) ** 2 / self.arrive_s if u < 1 else 0.0
        # The hand's tremor: its speed is the condition's hand speed (a steady hand: a few px/s).
        amplitude = max(self.shot.speed_px_s, 1.0) / (2 * math.pi * self.tremor_hz)
        phase = 2 * math.pi * self.tremor_hz * t
        wobble = amplitude * np.float64([math.sin(phase), math.sin(1.3 * phase + 1)])
        wobble_v = (
            amplitude * 2 * math.pi * self.tremor_hz * np.float64([math.cos(phase), 1.3 * math.cos(1.3 * phase + 1)])
        )
        return start + (rest - start) * ease + wobble, (rest - start) * speed + wobble_v


def presentation(condition: str, severity: int, size: tuple[int, int], seed: int) -> Presentation:
    rng = np.random.default_rng([seed, 0xF00D])
    shot = draw_shot(condition, severity, size, seed)
    width, height = size
    rest = (width * rng.uniform(0.35, 0.65), height * rng.uniform(0.35, 0.65))
    side = int(rng.integers(0, 4))  # it comes in from the left, right, top or bottom
    start = [(-0.3 * width, rest[1]), (1.3 * width, rest[1]), (rest[0], -0.4 * height), (rest[0], 1.4 * height)][side]
    return Presentation(
        condition=condition,
        severity=severity,
        shot=shot,
        fps=float(rng.choice(FRAME_RATES)),
        start=start,
        rest=rest,
        arrive_s=float(rng.uniform(0.3, 0.6)),
        tremor_hz=float(rng.uniform(2, 5)),
        roll_drift_deg=float(rng.uniform(-10, 10)),
    )


def _code_in_view(scene: Presentation, ticket: PrintedTicket, frame_index: int) -> bool:
    """Whether the whole code is inside frame ``frame_index`` (the moment the ticket counts as presented)."""
    shot = scene.shot_at(frame_index / scene.fps)
    side = SCREEN_QR_MM if shot.screen else ticket.qr_mm[2]
    half = side / 2
    h_mm = aim(shot, side, side / ticket.modules, np.random.default_rng(0))
    corners = project(h_mm, [[-half, -half], [half, -half], [half, half], [-half, half]])
    width, height = shot.size
    return bool((corners >= 0).all() and (corners[:, 0] < width).all() and (corners[:, 1] < height).all())


def _widest_span(scene: Presentation) -> float:
    """The most the code spans across the frame over the sequence, in code sides (1 upright, 1.41 diagonal)."""
    rolls = (scene.shot_at(t).roll_deg for t in np.linspace(0, DURATION_S, 9))
    return max(abs(math.cos(math.radians(roll))) + abs(math.sin(math.radians(roll))) for roll in rolls)


def run_sequence(scene: Presentation, ticket: PrintedTicket, seed: int) -> dict:
    """Play one sequence into a fresh live decoder; the verdict's time after presentation, or None."""
    keys = keyring([ticket.verify_key])

    def verify(text: str) -> bool:
        return text == ticket.short_code or parse_code(text, keys).valid

    _name, feed, advice = live_decoder(verify)
    # A person holds a big ticket (one to a page) further away, so its code fits in the frame where it settles.
    # A code held turned spans more of the frame than its side: a diagonal one 1.4 times.
    side = SCREEN_QR_MM if scene.shot.screen else ticket.qr_mm[2]
    fitting = 0.7 * min(scene.shot.size) * REFERENCE_QR_MM / (side * _widest_span(scene))
    scene = replace(scene, shot=replace(scene.shot, code_px=min(scene.shot.code_px, fitting)))
    frames = int(DURATION_S * scene.fps)
    presented = next((i for i in range(frames) if _code_in_view(scene, ticket, i)), frames) / scene.fps
    clock, last, decoded, false_reads, advised = 0.0, -1, 0, 0, None

    def result(verdict_s: float | None) -> dict:
        return {
            "verdict_s": verdict_s,
            "decoded": decoded,
            "false_reads": false_reads,
            "presented_s": presented,
            "advised_s": advised,
        }

    while True:
        index = max(last + 1, int(math.floor(clock * scene.fps + 1e-9)))  # the newest frame captured by now
        if index >= frames:
            return result(None)
        clock = max(clock, index / scene.fps)
        image = photograph(ticket, scene.shot_at(index / scene.fps), seed, frame_seed=seed * 1000 + index)
        started = time.thread_time()
        texts = [text for text in feed(image, clock) if verify(text)]
        clock += time.thread_time() - started
        last, decoded = index, decoded + 1
        if advised is None and advice() is not None:
            advised = max(0.0, clock - presented)  # the screen's advice to the driver, from then on
        false_reads += any(text not in ticket.readings for text in texts)
        if texts:
            return result(max(0.0, clock - presented))


def plan(sequences_per_cell: int) -> list[tuple[str, int, tuple[int, int]]]:
    cells = [
        (name, severity)
        for name, (levels, _change) in CONDITIONS.items()
        for severity in READABLE_SEVERITIES
        if severity <= levels
    ]
    return [(name, severity, SIZES[k % 2]) for k in range(sequences_per_cell) for name, severity in cells]


def measure(sequences_per_cell: int, seed: int, pool_size: int = 4) -> dict:
    pool = ticket_pool(seed, pool_size)
    rows: dict = {}
    for index, (condition, severity, size) in enumerate(plan(sequences_per_cell)):
        sequence_seed = seed * 1_000_003 + index
        scene = presentation(condition, severity, size, sequence_seed)
        result = run_sequence(scene, pool[index % len(pool)], sequence_seed)
        rows.setdefault((condition, severity), []).append(result)
    return rows


def _median_ms(results: list[dict]) -> float:
    """Median time to verdict, a sequence with none counting as never."""
    return 1000 * statistics.median(r["verdict_s"] if r["verdict_s"] is not None else math.inf for r in results)


def _within(results: list[dict]) -> float:
    return 100 * sum(r["verdict_s"] is not None and r["verdict_s"] <= DEADLINE_S for r in results) / len(results)


def format_report(rows: dict, decoder: str) -> str:
    lines = [
        f"live decoder: {decoder}",
        f"{'condition':14}{'sev':>4}{'n':>4}{'<=1 s %':>9}{'median ms':>11}{'false':>7}",
    ]
    every = []
    for (condition, severity), results in rows.items():
        every.extend(results)
        false_reads = sum(r["false_reads"] for r in results)
        lines.append(
            f"{condition:14}{severity:>4}{len(results):>4}{_within(results):>9.1f}{_median_ms(results):>11.0f}{false_reads:>7}"
        )
    late = [r for r in every if r["verdict_s"] is None or r["verdict_s"] > DEADLINE_S]
    advised = sum(r["advised_s"] is not None for r in late)
    lines.append(f"not read within 1 s: {len(late)}, of which the lane screen advised the driver in {advised}")
    lines.append(f"presentation: {_within(every):.1f}% read within 1 s, median {_median_ms(every):.0f} ms")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.presentation", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sequences",
        type=int,
        default=SEQUENCES_PER_CELL,
        help=f"sequences per condition and severity (default {SEQUENCES_PER_CELL})",
    )
    parser.add_argument("--seed", type=int, default=1, help=f"seeds >= {HELD_OUT_SEEDS} are the held-out set")
    parser.add_argument("--quick", action="store_true", help="one sequence per condition and severity")
    args = parser.parse_args(argv)
    per_cell = 1 if args.quick else args.sequences
    if per_cell < 1:
        parser.error("--sequences must be at least 1")
    cv2.setNumThreads(1)  # a decode's CPU time is then all this thread's, which the clock counts
    print("the clock advances by each decode's CPU time in this thread (one core's worth)", flush=True)
    rows = measure(per_cell, args.seed)
    print(format_report(rows, live_decoder(lambda _text: True)[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
