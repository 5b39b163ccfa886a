"""Draw the app's icons into ``server/static/app/``: ``python -m server.pwa.make_icons``.

The mark is a white ticket holding a QR's three finder squares, on the portal's blue. Three cuts:
``icon-*`` (purpose "any": rounded corners, transparent outside), ``icon-maskable-*`` (full-bleed blue, the
mark inside the central circle of 40 % radius that every launcher's mask keeps) and ``apple-touch-icon``
(full-bleed: iOS rounds it itself). Drawn at four times the size and scaled down, so edges are smooth.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

OUT = Path(__file__).resolve().parent.parent / "static" / "app"
BLUE = (148, 83, 11, 255)  # #0b5394 as BGRA
WHITE = (255, 255, 255, 255)
SUPERSAMPLE = 4
#: The QR's finder squares sit on a 21-module grid (a version-1 QR), with a 2-module margin on the ticket.
GRID = 21
MARGIN = 2


def _rounded_rect(img: np.ndarray, x0: int, y0: int, x1: int, y1: int, radius: int, color: tuple) -> None:
    cv2.rectangle(img, (x0 + radius, y0), (x1 - radius, y1), color, -1)
    cv2.rectangle(img, (x0, y0 + radius), (x1, y1 - radius), color, -1)
    for cx, cy in ((x0 + radius, y0 + radius), (x1 - radius, y0 + radius), (x0 + radius, y1 - radius)):
        cv2.circle(img, (cx, cy), radius, color, -1, lineType=cv2.LINE_AA)
    cv2.circle(img, (x1 - radius, y1 - radius), radius, color, -1, lineType=cv2.LINE_AA)


def _finder(img: np.ndarray, x: float, y: float, module: float) -> None:
    """A QR finder square (7 x 7 modules) with its top-left corner at ``(x, y)``."""
    for inset, color in ((0, BLUE), (1, WHITE), (2, BLUE)):
        a = (round(x + inset * module), round(y + inset * module))
        b = (round(x + (7 - inset) * module) - 1, round(y + (7 - inset) * module) - 1)
        cv2.rectangle(img, a, b, color, -1)


def _mark(img: np.ndarray, centre: float, side: float) -> None:
    """The white ticket with three finder squares and a few data modules, ``side`` wide, centred."""
    x0, y0 = round(centre - side / 2), round(centre - side / 2)
    _rounded_rect(img, x0, y0, round(x0 + side), round(y0 + side), round(side * 0.08), WHITE)
    module = side / (GRID + 2 * MARGIN)
    left, top = x0 + MARGIN * module, y0 + MARGIN * module
    for col, row in ((0, 0), (GRID - 7, 0), (0, GRID - 7)):
        _finder(img, left + col * module, top + row * module, module)
    for col, row in ((9, 9), (11, 9), (10, 11), (14, 14), (16, 12), (12, 16), (18, 18), (16, 16), (9, 14)):
        a = (round(left + col * module), round(top + row * module))
        b = (round(left + (col + 2) * module) - 1, round(top + (row + 2) * module) - 1)
        cv2.rectangle(img, a, b, BLUE, -1)


def draw_icon(size: int, *, maskable: bool = False, full_bleed: bool = False) -> np.ndarray:
    """One icon as a BGRA image of ``size`` x ``size`` pixels."""
    big = size * SUPERSAMPLE
    img = np.zeros((big, big, 4), np.uint8)
    if maskable or full_bleed:
        img[:] = BLUE
    else:
        _rounded_rect(img, 0, 0, big - 1, big - 1, round(big * 0.18), BLUE)
    # The maskable mark stays inside the safe circle: a square of side s fits a circle of radius 0.4 * size
    # when s <= 0.8 * size / sqrt(2) (0.566); 0.5 leaves a margin.
    side = big * (0.5 if maskable else 0.62)
    _mark(img, big / 2, side)
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)


#: File name → (size, maskable, full bleed).
ICONS = {
    "icon-192.png": (192, False, False),
    "icon-512.png": (512, False, False),
    "icon-maskable-192.png": (192, True, False),
    "icon-maskable-512.png": (512, True, False),
    "apple-touch-icon.png": (180, False, True),
}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (size, maskable, full_bleed) in ICONS.items():
        cv2.imwrite(str(OUT / name), draw_icon(size, maskable=maskable, full_bleed=full_bleed))
        print(OUT / name)


if __name__ == "__main__":
    main()
