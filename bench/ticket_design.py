"""Which printed QR reads best: the photo benchmark run on the same shots for each candidate ticket design.

    python -m bench.ticket_design [--frames N] [--seed S]

Every candidate prints the same tickets (same codes, same text) through server/tickets/pdf.py with another
:class:`QrStyle`: the QR's side, its error-correction level, the clear space around it, and the code's form
in the QR: base 32 (alphanumeric mode, version 6 at M; byte mode would need version 8, 49 modules) or decimal
(gate_core.codes: numeric mode, version 5 at M, 37 modules).
A bigger QR pushes the bands under it down and makes the box taller, so six to a sheet print it a little
smaller than its nominal side; the table shows the side actually printed. Each frame is the same shot
(condition, pose, light, seed) for every candidate, so the differences are the design's.
"""

from __future__ import annotations

import argparse
import sys

from bench.camera_conditions import cells
from bench.camera_decode import HELD_OUT_SEEDS, Tally, frames, readers
from bench.ticket_prints import ticket_pool
from server.tickets.pdf import QrStyle, box_scale, module_mm, qr_symbol, sheet_cells

CANDIDATES: dict[str, QrStyle] = {
    "35 mm M (v6), before": QrStyle(),
    "35 mm L (v5)": QrStyle(error="l"),
    "35 mm Q (v7)": QrStyle(error="q"),
    "40 mm M (v6)": QrStyle(size=40.0, quiet=4.0),
    "44 mm M (v6)": QrStyle(size=44.0, quiet=4.0),
    "44 mm L (v5)": QrStyle(size=44.0, quiet=4.0, error="l"),
    "44 mm M decimal (v5)": QrStyle(size=44.0, quiet=4.0, decimal=True),
}
# WeChat QR (the slowest by far) is left out: the design is for the gate's own pipeline and zxing-cpp.
_READERS = ("portgate", "zxing-cpp")


def describe(style: QrStyle) -> str:
    """Version, modules and the printed sizes (six to a sheet, one to a page) of a style."""
    symbol = qr_symbol("PG1" + "A" * 120, style)
    six, one = (box_scale(sheet_cells(n)[0], style) for n in (6, 1))
    module = module_mm(style)
    return (
        f"{symbol.designator:>5} {symbol.symbol_size(border=0)[0]:>3} modules; "
        f"6/sheet {style.size * six:4.1f} mm ({module * six:.2f} mm/module), 1/page {style.size * one:4.1f} mm"
    )


def measure(n: int, seed: int, designs: list[str], pool_size: int = 4) -> dict[str, dict]:
    chosen = {name: reader for name, reader in readers().items() if name in _READERS}
    results = {}
    for label in designs:
        style = CANDIDATES[label]
        pool = ticket_pool(seed, pool_size, style)
        overall = {name: Tally() for name in chosen}
        by_condition: dict[str, Tally] = {}
        for frame in frames(n, seed, pool):
            for name, reader in chosen.items():
                texts = reader(frame.image)
                overall[name].add(frame.truth, texts, 0.0)
                if name == "portgate":
                    by_condition.setdefault(frame.condition, Tally()).add(frame.truth, texts, 0.0)
        results[label] = {"overall": overall, "conditions": by_condition, "style": style}
        print(
            f"{label:22} {describe(style)}: " + " ".join(f"{k} {v.rate:.1f}%" for k, v in overall.items()), flush=True
        )
    return results


def format_table(results: dict[str, dict]) -> str:
    conditions = list(next(iter(results.values()))["conditions"])
    lines = [
        f"{'design':22}" + "".join(f"{name:>11}" for name in _READERS) + "".join(f"{c[:9]:>10}" for c in conditions)
    ]
    for label, row in results.items():
        rates = "".join(f"{row['overall'][name].rate:>11.1f}" for name in _READERS if name in row["overall"])
        per_condition = "".join(f"{row['conditions'][c].rate:>10.1f}" for c in conditions)
        lines.append(f"{label:22}{rates}{per_condition}")
    lines.append("(per condition: Portgate's read %)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ticket_design", description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=3 * len(cells()), help="frames per design")
    parser.add_argument("--seed", type=int, default=1, help=f"seeds >= {HELD_OUT_SEEDS} are the held-out set")
    parser.add_argument("--designs", help="comma-separated numbers of the candidates to run (default: all)")
    args = parser.parse_args(argv)
    if args.frames < 1:
        parser.error("--frames must be at least 1")
    labels = list(CANDIDATES)
    try:
        designs = [labels[int(i)] for i in args.designs.split(",")] if args.designs else labels
    except (ValueError, IndexError):
        parser.error(f"--designs takes numbers from 0 to {len(labels) - 1}")
    print(format_table(measure(args.frames, args.seed, designs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
