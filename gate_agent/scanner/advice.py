"""What the lane screen tells a driver whose ticket the camera sees but cannot read.

A verdict normally comes within a second of a ticket being held up. When it does not, the driver should not be
left waiting in front of a silent screen: once a code has been in view for `ADVICE_AFTER_S` without a read,
the pipeline gives advice the screen shows until a verdict comes.

"In view" means the grid reader found a ticket's symbol (version 5 or 6) whose fixed patterns fit, where zxing
located a symbol it could not decode or where finder patterns put one. A code too far away to be located gives
no advice (nothing says a code is there rather than any other fine texture), nor does a scene without a code,
a code that reads (a foreign QR code reads as its own text) or a ticket just read (`QUIET_AFTER_READ_S`: the
driver is on their way). A code in view unread for longer than `ADVICE_AT_MOST_S` is no longer a driver
trying (a damaged sticker in the camera's view): the advice stops until it is taken away.

The advice (`gate_core.reasons.Advice`, with the screen's text in Spanish and English):

- `glare`: part of the code is burnt white, dark modules and all: a lamp's reflection. The ticket is to be
  tilted.
- `unclear`: anything else (a crease, blur, a dim lane): the ticket is to be held flat and still.
"""

from __future__ import annotations

import cv2
import numpy as np

from gate_agent.scanner.qrgrid import TICKET_VERSIONS
from gate_agent.scanner.qrsymbol import layout
from gate_core.reasons import Advice

#: How long (s) a code must be in view without a read before the screen advises.
ADVICE_AFTER_S = 1.0
#: No advice for this long (s) after a read: the ticket still in view is the one just decided.
QUIET_AFTER_READ_S = 8.0
#: No advice once a code has been in view unread this long (s): nobody holds a ticket up that long.
ADVICE_AT_MOST_S = 20.0
#: The share of the area around a code burnt white, dark modules and all, from which its trouble is a glare. A
#: code has a dark module in every few modules' width: where none shows, a lamp's reflection has burnt them out (a
#: code merely overexposed keeps its dark modules). On development frames the pipeline did not read, 25 of 27
#: codes under glare had 1-24 % of that area so; a phone screen at full brightness up to 47 % (tilting it helps
#: too); 3 of 20 creased tickets (the lamp on the paper beside them); blur, night, a thumb, a dark-mode screen none.
_GLARE_SHARE = 0.01
_DARK_EVERY = 3  # modules: a window this wide on a code holds a dark module
#: Modules across the smallest symbol a ticket carries: a module's px from the place's side.
_TICKET_MODULES = layout(min(TICKET_VERSIONS)).size
_AROUND = 2.0  # how much wider than the located place the area looked at for a glare is
_BURNT = 250  # grey level from which a pixel is burnt white


def advice_for(gray: np.ndarray, symbols: list[np.ndarray]) -> Advice:
    """The advice for the unread code located at `symbols` (each its outer corners, 4 x 2, in the grey frame;
    two finder patterns place it on either side of them, so any of the places may be the code's)."""
    return Advice.GLARE if any(_burnt_share(gray, corners) >= _GLARE_SHARE for corners in symbols) else Advice.UNCLEAR


def _burnt_share(gray: np.ndarray, corners: np.ndarray) -> float:
    """The share of the area around `corners` with no dark pixel within `_DARK_EVERY` modules: the place grown to
    twice its side about its centre, which takes in the code wherever the place is off by a code's width (a glare
    over the code hides the fixed patterns that would have placed it right)."""
    quad = np.asarray(corners, np.float64).reshape(4, 2)
    centre = quad.mean(axis=0)
    points = np.round(centre + _AROUND * (quad - centre)).astype(np.int32)
    height, width = gray.shape[:2]
    left, top = np.clip(points.min(axis=0), 0, [width, height])
    right, bottom = np.clip(points.max(axis=0) + 1, 0, [width, height])
    box = gray[top:bottom, left:right]  # the code's box only: the mask costs nothing next to a frame
    mask = np.zeros(box.shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, points - [left, top], 1)
    window = max(3, round(_DARK_EVERY * _side_px(corners) / _TICKET_MODULES))
    darkest_near = cv2.erode(box, np.ones((window, window), np.uint8))[mask > 0]
    return float(np.mean(darkest_near >= _BURNT)) if darkest_near.size else 0.0


def _side_px(corners: np.ndarray) -> float:
    points = np.asarray(corners, np.float64).reshape(4, 2)
    return float(np.mean(np.hypot(*(points - np.roll(points, 1, axis=0)).T)))
