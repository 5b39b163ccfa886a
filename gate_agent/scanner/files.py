"""Decode codes from image and video files, frame by frame, timing each decode.

The service behind `portgate-agent decode`, the field tool for "why won't this print
scan?": feed it a photo or a clip from the gate camera and see what each backend reads.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from gate_agent.scanner.camera import IMAGE_EXTENSIONS
from gate_agent.scanner.decoders import Decoder

VIDEO_EXTENSIONS = frozenset(
    {".avi", ".mp4", ".m4v", ".mkv", ".mov", ".webm", ".mjpg", ".mjpeg", ".ts", ".h264", ".h265"}
)


class UnreadableFile(Exception):
    """The file is missing or is neither an image nor a video OpenCV can read."""


@dataclass(frozen=True)
class FrameDecode:
    file: str
    frame: int  # index in the video; 0 for an image
    ms: float  # time spent in the decoder alone
    codes: list[str]


def iter_file_frames(path: str | Path, every: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """(frame index, BGR frame) for an image (index 0) or every `every`-th video frame."""
    if every < 1:
        raise ValueError(f"every must be at least 1, not {every!r}")
    path = str(path)
    if not os.path.exists(path):
        raise UnreadableFile(f"{path}: no such file")
    if not os.path.isfile(path):
        raise UnreadableFile(f"{path}: not a regular file")
    extension = Path(path).suffix.lower()
    if extension in IMAGE_EXTENSIONS:
        yield 0, _read_image(path)
        return
    if extension not in VIDEO_EXTENSIONS:
        # OpenCV recognises images by their content, whatever the name says.
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is not None:
            yield 0, image
            return
    capture = cv2.VideoCapture(path)
    try:
        # FFmpeg opens some non-video files by guessing (a text file plays as ANSI art),
        # without naming a codec; a file called .avi or .mp4 gets the benefit of the doubt.
        guessed = extension not in VIDEO_EXTENSIONS and not capture.get(cv2.CAP_PROP_FOURCC)
        if not capture.isOpened() or guessed:
            raise UnreadableFile(f"{path}: not an image or a video OpenCV can read")
        index = -1
        while True:
            ok, frame = capture.read()
            if not ok or frame is None:
                break
            index += 1
            if index % every == 0:
                yield index, frame
        if index < 0:
            raise UnreadableFile(f"{path}: the video has no frames OpenCV can decode")
    finally:
        capture.release()


def _read_image(path: str) -> np.ndarray:
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise UnreadableFile(f"{path}: not an image OpenCV can read")
    return image


def decode_file(path: str | Path, decoder: Decoder, every: int = 1) -> Iterator[FrameDecode]:
    """Decode each image / sampled video frame of one file; raises UnreadableFile."""
    for index, frame in iter_file_frames(path, every):
        started = time.perf_counter()
        codes = decoder.decode(frame)
        elapsed_ms = (time.perf_counter() - started) * 1000
        yield FrameDecode(str(path), index, round(elapsed_ms, 2), codes)
