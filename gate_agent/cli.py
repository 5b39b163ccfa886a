"""`portgate-agent`: the gate agent's command line.

Each subcommand lives in an `add_<name>_command(commands)` function that registers its
arguments and its handler; handlers parse, call a service, render, and return an exit
status. Add a command by writing such a function and calling it in `build_parser`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from collections.abc import Sequence

from gate_agent.commands import add_enrol_command, add_outbox_command, add_run_command
from gate_agent.config import AgentConfigError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIGURATION = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="portgate-agent",
        description="Portgate gate agent: reads tickets at a gate and checks them.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_decode_command(commands)
    add_run_command(commands)
    add_enrol_command(commands)
    add_outbox_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except AgentConfigError as exc:
        print(f"portgate-agent: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIGURATION


# -- decode -----------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _roi(text: str) -> tuple[int, int, int, int]:
    parts = text.split(",")
    try:
        x, y, width, height = (int(part) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not X,Y,WIDTH,HEIGHT (four whole numbers)") from None
    if x < 0 or y < 0 or width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: need X,Y >= 0 and WIDTH,HEIGHT >= 1")
    return x, y, width, height


def add_decode_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "decode",
        help="read the codes in image or video files and time each decode",
        description=(
            "Decode every image, or every frame of each video, with the gate's decoder and "
            "print the codes found and the milliseconds each decode took. The tool for "
            '"why won\'t this print scan?".'
        ),
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="image (png, jpg…) or video")
    parser.add_argument(
        "--backend",
        choices=("auto", "zxing", "pyzbar"),
        default="auto",
        help=(
            "decoder to use (default: auto = the gate's own pipeline: zxing-cpp, then its targeted "
            "passes, all of them on a miss, as the gate runs them over the frames of one sighting; "
            "pyzbar alone if zxing-cpp is not installed)"
        ),
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help='one JSON object per image or frame: {"file", "frame", "ms", "codes"}',
    )
    parser.add_argument(
        "--every",
        type=_positive_int,
        default=1,
        metavar="N",
        help="decode only every N-th frame of a video (default: 1, every frame)",
    )
    parser.add_argument(
        "--harder",
        action="store_true",
        help="zxing or pyzbar alone: always run the decoder's slower pass (the pipeline always runs every pass)",
    )
    parser.add_argument(
        "--all-formats",
        action="store_true",
        help="look for every barcode format, not only the ticket formats (QR, Code 128)",
    )
    parser.add_argument(
        "--roi",
        type=_roi,
        metavar="X,Y,W,H",
        help="decode only this region of each frame, in pixels",
    )
    parser.set_defaults(handler=run_decode)


def _decode_command_decoder(args: argparse.Namespace):
    """The decoder the gate would use for this backend.

    The gate's pipeline runs every pass on a frame it has not read: live, its time budget spreads
    them over the frames of a sighting, and a file's frame stands for that sighting. It counts only
    ticket-shaped codes (no keys here to check signatures), unless --all-formats asks for any text.
    """
    from gate_agent.scanner.decoders import DEFAULT_FORMATS, get_decoder
    from gate_agent.scanner.pipeline import FramePipeline, accept_any

    formats = None if args.all_formats else DEFAULT_FORMATS
    decoder = get_decoder(args.backend, roi=args.roi, harder=args.harder, formats=formats)
    if isinstance(decoder, FramePipeline):
        decoder.budget_ms = None
        if args.all_formats:
            decoder.verify = accept_any
    return decoder


def run_decode(args: argparse.Namespace) -> int:
    import numpy as np

    from gate_agent.scanner.files import UnreadableFile, decode_file

    try:
        decoder = _decode_command_decoder(args)
    except ImportError as error:
        print(f"error: the {args.backend} decoder is not installed: {error}", file=sys.stderr)
        return EXIT_FAILURE
    # The first call pays one-time setup; keep it out of the timings shown.
    decoder.decode(np.full((64, 64), 255, np.uint8))

    status = EXIT_OK
    for path in args.files:
        timings = []
        frames_with_codes = 0
        try:
            for result in decode_file(path, decoder, every=args.every):
                timings.append(result.ms)
                frames_with_codes += bool(result.codes)
                if args.json:
                    print(json.dumps(dataclasses.asdict(result)), flush=True)
                else:
                    codes = "  ".join(result.codes) if result.codes else "(no code found)"
                    print(f"{result.file} frame {result.frame}: {result.ms:.1f} ms  {codes}")
        except UnreadableFile as error:
            print(f"error: {error}", file=sys.stderr)
            status = EXIT_FAILURE
        except ValueError as error:  # e.g. a --roi outside the frame
            print(f"error: {path}: {error}", file=sys.stderr)
            status = EXIT_FAILURE
        if len(timings) > 1 and not args.json:
            print(
                f"{path}: {frames_with_codes} of {len(timings)} frames read, median "
                f"{statistics.median(timings):.1f} ms, slowest {max(timings):.1f} ms ({decoder.name})"
            )
    return status


if __name__ == "__main__":
    sys.exit(main())
