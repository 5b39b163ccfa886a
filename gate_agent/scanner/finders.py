"""Where a QR code is, from its finder patterns, when the libraries' detectors give up: three finders
seen, or two (a thumb over the third, a corner out of the light).

A finder pattern is a dark square ring around a dark centre: in a black-and-white picture, a shape with a
hole with a shape in it, the outer about 49/9 the area of the inner. Each pair or triple of finders of about
the same module size, as far apart as a symbol of the version needs, gives the symbol's outer corners
(`candidate_quads`); the grid reader (qrgrid) then fits and reads them.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from gate_agent.scanner.qrsymbol import layout

# How far the finders' centres are apart, in modules, is size - 7; the outer corner is 3.5 modules from one.
_CENTRE_TO_CORNER = 3.5
_MIN_AREA = 12.0  # px: a finder's centre smaller than this is noise
_SIZE_MATCH = 0.5  # two finders' module sizes may differ by this share (tilt makes one look smaller)
_SPACING_MATCH = 0.3  # and their distance from what the version needs by this share
_MOST_FINDERS = 9  # the finders considered in one picture (three codes' worth)
_MOST_QUADS = 16  # the places they suggest, at most
_OUTSIDE = 6  # modules a guessed corner may be past the picture's edge
#: The local thresholds' neighbourhoods, as fractions of the picture's short side (1/8 and 1/16).
_LOCAL_BLOCKS = (8, 16)


@dataclass(frozen=True)
class Finder:
    centre: np.ndarray  # x, y in px
    module: float  # px
    # How one module lies in the picture: the spread (second moments) of the pattern's outer square, per
    # module squared. A tilted code's finder is squeezed along the tilt, and so is the symbol around it.
    spread: np.ndarray
    unlike: float = 0.0  # how far its areas' ratio is from a finder's 49/9 (log): 0 is a perfect one


def find_finders(gray: np.ndarray) -> list[Finder]:
    """Finder patterns in a grey picture, dark or light, under a global threshold and two local ones."""
    blurred = cv2.GaussianBlur(gray, (0, 0), 1.0)
    _threshold, global_binary = cv2.threshold(blurred, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    # Two local thresholds: the wide one keeps a finder's ring and centre apart on a small, blurred code; the
    # narrow one follows light that changes within a code's width (a glare beside a finder thins its centre
    # away under the wide one's mean).
    local_binaries = [
        cv2.adaptiveThreshold(blurred, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, block, 5)
        for block in (max(15, (min(gray.shape) // divisor) | 1) for divisor in _LOCAL_BLOCKS)
    ]
    binaries = [global_binary, *local_binaries]
    found = _distinct([shape for binary in binaries for shape in _nested_shapes(binary)])
    if len(found) < 2:  # light finders, on a phone in dark mode
        found = _distinct([*found, *(shape for binary in binaries for shape in _nested_shapes(255 - binary))])
    return found


def _distinct(shapes: list[Finder]) -> list[Finder]:
    """The likeliest finders, one per place (each threshold finds the same one again). A scene full of nested
    squares (a tiled floor, a sheet of codes) must not cost a frame its budget: the likeliest few are enough
    for the code held up to the camera."""
    found: list[Finder] = []
    for finder in sorted(shapes, key=lambda shape: shape.unlike):
        if all(np.hypot(*(finder.centre - other.centre)) > 2 * other.module for other in found):
            found.append(finder)
            if len(found) == _MOST_FINDERS:
                break
    return found


def _nested_shapes(binary: np.ndarray) -> list[Finder]:
    contours, hierarchy = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return []
    links = hierarchy[0]
    children = links[:, 2]
    # A shape with a hole with a shape in it (looked up at once: a noisy picture has hundreds of contours).
    nested = np.flatnonzero((children >= 0) & (links[np.maximum(children, 0), 2] >= 0)).tolist()
    finders = []
    for index in nested:
        inner = contours[links[children[index]][2]]
        outer_area, inner_area = cv2.contourArea(contours[index]), cv2.contourArea(inner)
        if inner_area < _MIN_AREA or not 2.5 < outer_area / inner_area < 12:
            continue
        moments = cv2.moments(inner)
        centre = np.array([moments["m10"] / moments["m00"], moments["m01"] / moments["m00"]], np.float64)
        unlike = abs(float(np.log(outer_area / inner_area / (49 / 9))))
        outer = cv2.moments(contours[index])
        # The outer square's second moments, per module squared (a 7 x 7 module square's are 49/12 a side).
        spread = np.array([[outer["mu20"], outer["mu11"]], [outer["mu11"], outer["mu02"]]]) / outer["m00"] * 12 / 49
        finders.append(Finder(centre, float(np.sqrt(outer_area)) / 7, spread, unlike))
    return finders


Triple = tuple[np.ndarray, np.ndarray, np.ndarray]
"""Centres of the top-left, top-right and bottom-left finders."""


@dataclass(frozen=True)
class Quad:
    corners: np.ndarray  # 4 x 2: the symbol's top-left, top-right, bottom-right and bottom-left outer corners
    guessed: tuple[int, ...]  # which of them no finder vouches for (where the missing finder and no finder are)


def candidate_quads(finders: list[Finder], version: int, frame: tuple[int, int]) -> list[Quad]:
    """Where symbols the finders could belong to are, in a picture of `frame` (height, width) px: finder
    triples first, then pairs completed with the third finder wherever it could be, except where that
    puts much of the symbol outside the picture."""
    apart = layout(version).size - 7
    triangles = _triangles(finders, apart)
    found: list[tuple[Triple, int | None]] = [(triple, None) for triple in triangles]
    in_triangles = {id(f) for f in finders if any(any(f.centre is c for c in t) for t in triangles)}
    for i, a in enumerate(finders):
        for b in finders[i + 1 :]:
            if id(a) in in_triangles and id(b) in in_triangles:
                continue  # a pair of a triple already found
            if _fits(a, b, apart):
                found.extend(_beside(a, b))
            elif _fits(a, b, apart * np.sqrt(2)):
                found.extend((triple, 0) for triple in _across(a.centre, b.centre))
    quads = []
    for triple, missing in found:
        corners = _quad(*triple, apart)
        if corners is not None and _mostly_inside(corners, apart, frame):
            guessed = (2,) if missing is None else ((0, 1, 3)[missing], 2)
            quads.append(Quad(corners, guessed))
    return quads[:_MOST_QUADS]


def _mostly_inside(corners: np.ndarray, apart: int, frame: tuple[int, int]) -> bool:
    """Whether no corner is more than `_OUTSIDE` modules past the picture's edges (a code held with a
    corner out of view still counts; a symbol guessed mostly off the picture does not)."""
    module = float(np.hypot(*(corners[1] - corners[0]))) / (apart + 2 * _CENTRE_TO_CORNER)
    margin = _OUTSIDE * module
    height, width = frame
    xs, ys = corners[:, 0], corners[:, 1]
    return bool(
        (xs > -margin).all() and (xs < width + margin).all() and (ys > -margin).all() and (ys < height + margin).all()
    )


def _fits(a: Finder, b: Finder, modules: float) -> bool:
    if abs(a.module - b.module) > _SIZE_MATCH * max(a.module, b.module):
        return False
    expected = modules * (a.module + b.module) / 2
    return abs(np.hypot(*(a.centre - b.centre)) - expected) < _SPACING_MATCH * expected


def _clockwise(top_left: np.ndarray, top_right: np.ndarray, bottom_left: np.ndarray) -> bool:
    """Whether the three centres are in a symbol's order (seen from the front, y pointing down)."""
    right, down = top_right - top_left, bottom_left - top_left
    return bool(right[0] * down[1] - right[1] * down[0] > 0)


def _triangles(finders: list[Finder], apart: int) -> list[Triple]:
    """(top-left, top-right, bottom-left) centres of finder triples shaped like a symbol's."""
    found = []
    for i, corner in enumerate(finders):
        others = [f for j, f in enumerate(finders) if j != i and _fits(corner, f, apart)]
        for k, first in enumerate(others):
            for second in others[k + 1 :]:
                if _fits(first, second, apart * np.sqrt(2)):
                    pair = (first.centre, second.centre)
                    right, down = pair if _clockwise(corner.centre, *pair) else pair[::-1]
                    found.append((corner.centre, right, down))
    return found


def _turned(vector: np.ndarray) -> np.ndarray:
    return np.array([-vector[1], vector[0]], np.float64)


def _beside(a: Finder, b: Finder) -> list[tuple[Triple, int]]:
    """The symbols two finders one side apart can belong to: the third finder next to either, on either
    side of the line through them, square to it or foreshortened as the finder's shape says (eight in all;
    the order of each triple makes it a symbol seen from the front); each with the place of the finder not
    seen."""
    triples: list[tuple[Triple, int]] = []
    for corner, other in ((a, b), (b, a)):
        along = other.centre - corner.centre
        # The symbol seen from the front, and as foreshortened the way the finder's own shape says.
        for side in (_turned(along), _square_to(corner, along)):
            for third in (corner.centre + side, corner.centre - side):
                if _clockwise(corner.centre, other.centre, third):
                    triples.append(((corner.centre, other.centre, third), 2))
                else:
                    triples.append(((corner.centre, third, other.centre), 1))
    return triples


def _square_to(finder: Finder, along: np.ndarray) -> np.ndarray:
    """The symbol's side at right angles to `along` (a side from `finder`), as the picture shows it: the
    finder's own shape says how the symbol is foreshortened there, so a tilted symbol's other side is
    shorter or longer than `along` and not quite square to it in the picture."""
    values, vectors = np.linalg.eigh(finder.spread)
    if not values.min() > 0:
        return _turned(along)
    root = vectors @ np.diag(np.sqrt(values)) @ vectors.T  # the module's shape, back to a square by its inverse
    square = np.linalg.solve(root, along)  # `along` as it would be on the symbol seen from the front
    return root @ _turned(square)


def _across(a: np.ndarray, b: np.ndarray) -> list[Triple]:
    """The two symbols two finders a diagonal apart can belong to (the top-left finder is the one missing)."""
    middle, half = (a + b) / 2, (b - a) / 2
    triples = []
    for corner in (middle + _turned(half), middle - _turned(half)):
        triples.append((corner, a, b) if _clockwise(corner, a, b) else (corner, b, a))
    return triples


def _quad(top_left: np.ndarray, top_right: np.ndarray, bottom_left: np.ndarray, apart: int) -> np.ndarray | None:
    right = (top_right - top_left) / apart  # one module along a row
    down = (bottom_left - top_left) / apart  # one module down a column
    if abs(right[0] * down[1] - right[1] * down[0]) < 1:
        return None
    out = _CENTRE_TO_CORNER
    corners = [
        top_left - out * right - out * down,
        top_right + out * right - out * down,
        top_right + bottom_left - top_left + out * right + out * down,
        bottom_left - out * right + out * down,
    ]
    return np.array(corners, np.float32)
