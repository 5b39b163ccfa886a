"""Shared helpers for the scanner tests: generated ticket photos, QR images, waiting."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import cv2
import numpy as np
import segno

from bench.photos import make_ticket_frames
from server.tickets.pdf import QrStyle, qr_symbol

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


PAPER = 200  # the grey of the desk around a ticket
#: How tickets printed before the decimal form drew their QR (the base 32 form): `on_paper`'s default.
BASE32_PRINT = QrStyle(decimal=False)


def on_paper(code: str, angle: float = 12.0, style: QrStyle = BASE32_PRINT) -> np.ndarray:
    """The QR of `code` as `style` prints it (6 px a module) on white paper, turned a little, on a grey desk,
    slightly soft."""
    modules = np.array(list(qr_symbol(code, style).matrix_iter(border=4)), bool)
    qr = np.where(modules, 0, 255).astype(np.uint8).repeat(6, axis=0).repeat(6, axis=1)
    frame = np.full((480, 640), PAPER, np.uint8)
    top, left = (480 - qr.shape[0]) // 2, (640 - qr.shape[1]) // 2
    frame[top : top + qr.shape[0], left : left + qr.shape[1]] = np.clip(qr.astype(int) * 0.8 + 30, 0, 255)
    turn = cv2.getRotationMatrix2D((320, 240), angle, 1.0)
    return cv2.GaussianBlur(cv2.warpAffine(frame, turn, (640, 480), borderValue=PAPER), (0, 0), 0.8)


def glare(frame: np.ndarray, centre: tuple[int, int], radius: float) -> np.ndarray:
    """A lamp's reflection: the paper burnt white around `centre`."""
    rows, cols = np.mgrid[: frame.shape[0], : frame.shape[1]]
    light = 400 * np.exp(-((cols - centre[0]) ** 2 + (rows - centre[1]) ** 2) / (2 * (radius / 2) ** 2))
    return np.clip(frame + light, 0, 255).astype(np.uint8)


def wait_until(condition: Callable[[], bool], timeout: float = 5.0, step: float = 0.01) -> bool:
    """Poll `condition` until it holds or `timeout` seconds pass; returns the last result."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()
