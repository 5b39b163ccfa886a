"""Shared helpers for the scanner tests: generated ticket photos, QR images, waiting."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import cv2
import numpy as np
import segno

from bench.photos import make_ticket_frames

SIZES = [(640, 480), (1280, 720)]


@functools.cache
def ticket_photos(size: tuple[int, int] = (640, 480), n: int = 6, seed: int = 11):
    """(code, BGR photo) pairs of printed tickets, generated once per test session."""
    return tuple(make_ticket_frames(n, size, seed))


def plain_qr(text: str, module_px: int = 6, canvas: tuple[int, int] = (480, 640)) -> np.ndarray:
    """A clean black-on-white QR code centred on a white BGR canvas (height, width)."""
    matrix = np.array(list(segno.make(text, error="m", micro=False).matrix_iter(border=4)))
    qr = np.where(matrix.astype(bool), 0, 255).astype(np.uint8)
    qr = qr.repeat(module_px, axis=0).repeat(module_px, axis=1)
    height, width = canvas
    frame = np.full((height, width), 255, np.uint8)
    top, left = (height - qr.shape[0]) // 2, (width - qr.shape[1]) // 2
    frame[top : top + qr.shape[0], left : left + qr.shape[1]] = qr
    return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)


def wait_until(condition: Callable[[], bool], timeout: float = 5.0, step: float = 0.01) -> bool:
    """Poll `condition` until it holds or `timeout` seconds pass; returns the last result."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()
