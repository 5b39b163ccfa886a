"""Decoder benchmark: pyzbar against zxing-cpp on synthetic photos of printed tickets.

    python -m bench.decode [--n 200] [--difficulty normal] [--seed 1]

Both backends run with the settings the gate ships (`get_decoder(name)`), on the same
frames. "empty" is the cost of a frame showing no ticket, which is what a gate camera
sees most of the time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

from bench.photos import DIFFICULTIES, make_empty_photo, make_ticket_frames
from gate_agent.scanner.decoders import default_decoder, get_decoder

SIZES = ((640, 480), (1280, 720))
BACKENDS = ("pyzbar", "zxing")
# What the default backend must reach (median ms per frame, read rate).
TARGETS = {"640x480": {"median_ms": 3.0}, "1280x720": {"median_ms": 6.0}, "read_rate": 99.0}
_EMPTY_FRAMES = 50
_WARM_UP_FRAMES = 3


def _timed_decode(decoder, frame: np.ndarray) -> tuple[list[str], float]:
    started = time.perf_counter()
    codes = decoder.decode(frame)
    return codes, (time.perf_counter() - started) * 1000


def _measure_one(backend: str, tickets: list[tuple[str, np.ndarray]], empties: list[np.ndarray]) -> dict:
    decoder = get_decoder(backend)
    for _code, frame in tickets[:_WARM_UP_FRAMES]:
        decoder.decode(frame)
    timings, read, misread = [], 0, 0
    for code, frame in tickets:
        codes, elapsed = _timed_decode(decoder, frame)
        timings.append(elapsed)
        read += code in codes
        misread += any(found != code for found in codes)
    empty_timings = [_timed_decode(decoder, frame)[1] for frame in empties]
    # A frame whose texture fools the code-like check pays for the harder pass too.
    always_harder = get_decoder(backend, harder=True)
    harder_timings = [_timed_decode(always_harder, frame)[1] for frame in empties]
    return {
        "median_ms": round(statistics.median(timings), 2),
        "p95_ms": round(float(np.percentile(timings, 95)), 2),
        "read_rate": round(100 * read / len(tickets), 1),
        "misreads": misread,
        "harder_passes": decoder.harder_passes,
        "empty_median_ms": round(statistics.median(empty_timings), 2),
        "empty_harder_median_ms": round(statistics.median(harder_timings), 2),
    }


def measure_decoders(
    n: int = 200,
    seed: int = 1,
    difficulty: str = "normal",
    sizes: tuple[tuple[int, int], ...] = SIZES,
    backends: tuple[str, ...] = BACKENDS,
) -> dict:
    """Figures per backend and frame size: {"backends": {name: {"WxH": {...}}}, ...}."""
    if n < 1:
        raise ValueError("n must be at least 1")
    results: dict = {
        "n": n,
        "seed": seed,
        "difficulty": difficulty,
        "default_backend": default_decoder().name,
        "targets": TARGETS,
        "backends": {backend: {} for backend in backends},
    }
    for size in sizes:
        label = f"{size[0]}x{size[1]}"
        tickets = make_ticket_frames(n, size, seed, difficulty)
        empties = [make_empty_photo(size, seed * 1000 + i, difficulty) for i in range(_EMPTY_FRAMES)]
        for backend in backends:
            results["backends"][backend][label] = _measure_one(backend, tickets, empties)
    return results


def meets_targets(results: dict) -> bool:
    """Whether the default backend reaches the speed and read-rate targets."""
    figures = results["backends"].get(results["default_backend"], {})
    return bool(figures) and all(
        label not in TARGETS
        or (row["median_ms"] <= TARGETS[label]["median_ms"] and row["read_rate"] >= TARGETS["read_rate"])
        for label, row in figures.items()
    )


def format_table(results: dict) -> str:
    backends = list(results["backends"])
    columns = ["median ms", "p95 ms", "read %", "misreads", "harder", "empty ms", "+harder"]
    keys = [
        "median_ms",
        "p95_ms",
        "read_rate",
        "misreads",
        "harder_passes",
        "empty_median_ms",
        "empty_harder_median_ms",
    ]
    width = 10 * len(columns) + 2
    header = f"{'':10}" + "".join(f"{backend:>{width}}" for backend in backends)
    subheader = f"{'frame':10}" + "".join("".join(f"{column:>10}" for column in columns) + "  " for _ in backends)
    lines = [
        f"{results['n']} photos per size, difficulty {results['difficulty']!r}, "
        f"seed {results['seed']}; default backend: {results['default_backend']}",
        "harder = photos that needed the harder pass; empty ms = frame with no ticket; "
        "+harder = the same when the harder pass runs anyway",
        header,
        subheader,
    ]
    labels = list(next(iter(results["backends"].values())))
    for label in labels:
        cells = ""
        for backend in backends:
            row = results["backends"][backend][label]
            cells += "".join(f"{row[key]:>10}" for key in keys) + "  "
        lines.append(f"{label:10}{cells}")
    verdict = "meets" if meets_targets(results) else "MISSES"
    lines.append(
        f"default backend {verdict} the targets: median <= "
        f"{TARGETS['640x480']['median_ms']} ms (640x480), "
        f"<= {TARGETS['1280x720']['median_ms']} ms (1280x720), read rate >= "
        f"{TARGETS['read_rate']}%"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.decode", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200, help="photos per frame size (default 200)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--difficulty", choices=sorted(DIFFICULTIES), default="normal")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be at least 1")
    results = measure_decoders(args.n, args.seed, args.difficulty)
    print(format_table(results))
    # The targets are set for realistic ("normal") photos only.
    return 0 if args.difficulty != "normal" or meets_targets(results) else 1


if __name__ == "__main__":
    sys.exit(main())
