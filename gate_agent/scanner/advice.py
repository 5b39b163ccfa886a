"""What the lane screen tells a driver whose ticket the camera sees but cannot read.

A verdict normally comes within a second of a ticket being held up. When it does not, the driver should not be
left waiting in front of a silent screen: once a code has been in view for `ADVICE_AFTER_S` without a read,
the pipeline gives advice the screen shows until a verdict comes.

"In view" means a symbol was located: zxing found one it could not decode, or the grid reader found one
whose fixed patterns fit. A code too far away for either to locate gives no advice (nothing says a code is
there rather than any other fine texture), nor does a frame without a code: advice is never shown for a
scene with no ticket in it.

The advice (`gate_core.reasons.Advice`, with the screen's text in Spanish and English):

- `glare`: part of the code is burnt white, dark modules and all: a lamp's reflection. The ticket is to be
  tilted.
- `unclear`: anything else (a crease, blur, a dim lane): the ticket is to be held flat and still.
"""

from __future__ import annotations

import cv2
import numpy as np

from gate_core.reasons import Advice

#: How long (s) a code must be in view without a read before the screen advises.
ADVICE_AFTER_S = 1.0
#: The share of a code's area burnt white, dark modules and all, from which its trouble is a glare. A code has a
#: dark module in every few modules' width: where none shows, a lamp's reflection has burnt them out (a code
#: merely overexposed keeps its dark modules). On development frames the pipeline did not read, codes under
#: glare had 7-36 % of their area so, codes under every other condition none.
_GLARE_SHARE = 0.04
_DARK_EVERY = 3  # modules: a window this wide on a code holds a dark module
_TICKET_MODULES = 37  # across the smallest symbol a ticket carries (version 5): a module's px from the side
_BURNT = 250  # grey level from which a pixel is burnt white
_LEAST_SIDE_PX = 8.0  # a located symbol smaller than this is no evidence (zxing's degenerate positions)


def located(symbols: list[np.ndarray]) -> list[np.ndarray]:
    """The symbols' corners (4 x 2) that span enough of the frame to say a code is there."""
    return [corners for corners in symbols if _side_px(corners) >= _LEAST_SIDE_PX]


def advice_for(gray: np.ndarray, corners: np.ndarray) -> Advice:
    """The advice for the unread code whose outer corners (4 x 2) in the grey frame are `corners`."""
    points = np.round(np.asarray(corners, np.float64).reshape(4, 2)).astype(np.int32)
    height, width = gray.shape[:2]
    left, top = np.clip(points.min(axis=0), 0, [width, height])
    right, bottom = np.clip(points.max(axis=0) + 1, 0, [width, height])
    box = gray[top:bottom, left:right]  # the code's box only: the mask costs nothing next to a frame
    mask = np.zeros(box.shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, points - [left, top], 1)
    window = max(3, round(_DARK_EVERY * _side_px(corners) / _TICKET_MODULES))
    darkest_near = cv2.erode(box, np.ones((window, window), np.uint8))[mask > 0]
    if darkest_near.size and float(np.mean(darkest_near >= _BURNT)) >= _GLARE_SHARE:
        return Advice.GLARE
    return Advice.UNCLEAR


def _side_px(corners: np.ndarray) -> float:
    points = np.asarray(corners, np.float64).reshape(4, 2)
    return float(np.mean(np.hypot(*(points - np.roll(points, 1, axis=0)).T)))
