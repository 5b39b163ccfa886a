"""The modules of a located QR code, each with how sure its reading is: the grid behind `qrsymbol`.

Given the four corners of a symbol roughly (from a detector), the grid is fitted to what every QR code of
that version must show: its finder, timing and alignment patterns and the white quiet zone around it
(OpenCV's ECC alignment over those modules only). Each module is then read from the middle of its cell,
against the light and dark of its own neighbourhood, so glare on one side and shadow on the other do not
decide for it; where the neighbourhood has no contrast left (burnt out by glare, covered), the module's
guess is kept as the least sure of all, for Reed-Solomon to erase first.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import cv2
import numpy as np

from gate_agent.scanner.qrsymbol import layout, version_of

#: The QR versions Portgate prints and shows (tests/test_camera_grid.py): every ticket code has the same length,
#: so one version per form (gate_core.codes) at level M: 5 (37 modules a side) for the decimal form printed and
#: shown now, 6 (41) for the base 32 form of tickets printed before.
TICKET_VERSIONS = (5, 6)
#: Pixels per module of the straightened symbol the grid is fitted and read on.
_PX = 4
_BORDER = 2  # modules of quiet zone kept around the symbol when straightening it
#: Below this share of the symbol's overall contrast, a neighbourhood is too flat to read: its guess is kept
#: as the least sure of all.
_FLAT = 0.25
_SETTLE_FIRST_STEP, _SETTLE_LAST_STEP = 2.0, 0.25  # modules
_SETTLE_ROUNDS = 12  # at most, each trying every guessed corner four ways
_ALIGN_FIRST_STEP, _ALIGN_LAST_STEP = 0.25, 0.06  # modules: then aligned on every module, less than one away
_ALIGN_ROUNDS = 8
_DIRECTIONS = np.array([[1, 0], [-1, 0], [0, 1], [0, -1]], np.float32)
_FLAT_TRUST = 0.05  # how far from undecided (0.5) a module in a flat neighbourhood may read
_ECC_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 6, 1e-4)


class Reading(NamedTuple):
    """A symbol's modules as read in one frame."""

    darkness: np.ndarray  # 0 light .. 1 dark, turned upright
    fits: float  # the share of the fixed modules (finders, timing, alignment) read as they are


def read_quad(gray: np.ndarray, corners: np.ndarray, version: int) -> Reading | None:
    """How dark each module of the version-`version` symbol whose outer corners are about `corners` (4 x 2,
    in order around the symbol, any starting corner) reads (see `darkness`); None when the corners do not
    make a symbol."""
    straight = straighten(gray, corners, version)
    if straight is None:
        return None
    (fitted, given), turn = straight
    grids = (fitted,) if fitted is given else (fitted, given)
    readings = [darkness(np.rot90(cells, turn), version) for cells in grids]
    # The fit to the fixed patterns can drift off when much of them is burnt out or covered: the grid as
    # given is then read instead, whichever shows the fixed modules better.
    return max(readings, key=lambda reading: reading.fits)


#: Two readings are of the same symbol when, of the data modules both read surely (at least an eighth of
#: them), this share agree. The fixed modules say nothing: every symbol of a version has the same.
_SAME_SYMBOL = 0.8
_SURE = 0.3  # how far from undecided (0.5) a module's darkness is when read surely


def same_symbol(one: np.ndarray, other: np.ndarray) -> bool:
    """Whether two readings (darkness) are of the same symbol: a sighting may show two tickets in turn."""
    version = version_of(one.shape[0])
    if one.shape != other.shape or version is None:
        return False
    data = layout(version).fixed < 0
    both = data & (np.abs(one - 0.5) > _SURE) & (np.abs(other - 0.5) > _SURE)
    if both.sum() < data.sum() // 8:
        return False
    return float(((one[both] > 0.5) == (other[both] > 0.5)).mean()) >= _SAME_SYMBOL


def combine(readings: list[np.ndarray]) -> np.ndarray:
    """One reading of a symbol seen in several frames: each module's evidence added up over the frames, so
    a module read surely in one frame and burnt out in the others stays sure, and glare or a shadow that
    moves uncovers what it hid. (Frames that all saw the same thing can outvote one clear one: the grid
    reader also tries the newest two alone.)"""
    evidence = np.sum([reading - 0.5 for reading in readings], axis=0)
    return np.clip(0.5 + evidence, 0, 1)


def settle_corners(gray: np.ndarray, corners: np.ndarray, version: int, guessed: tuple[int, ...]) -> np.ndarray:
    """The corners (top-left first) with each `guessed` one (placed by the others, not by a finder: under a
    thumb, or foreshortened by tilt) moved to where the symbol's fixed patterns fit best, then nudged (less
    than a module) to where the middles of all its modules stand out most from their neighbourhood: every
    module, data too, says where the grid is, so a corner the fixed patterns place only roughly lands on its
    cells."""
    best = np.asarray(corners, np.float32).reshape(4, 2)
    size = layout(version).size
    module = float(np.hypot(*(best[1] - best[0])) + np.hypot(*(best[3] - best[0]))) / (2 * size)

    def fixed_fit(trial: np.ndarray) -> float:
        return abs(_fit(_centres(gray, trial, size), version))  # a dark-mode screen's fits negative

    def module_contrast(trial: np.ndarray) -> float:
        return _module_contrast(_centres(gray, trial, size))

    best = _pattern_search(best, guessed, fixed_fit, module, _SETTLE_FIRST_STEP, _SETTLE_LAST_STEP, _SETTLE_ROUNDS)
    return _pattern_search(best, guessed, module_contrast, module, _ALIGN_FIRST_STEP, _ALIGN_LAST_STEP, _ALIGN_ROUNDS)


def _pattern_search(
    corners: np.ndarray,
    movable: tuple[int, ...],
    score: Callable[[np.ndarray], float],
    module: float,
    first_step: float,
    last_step: float,
    most_rounds: int,
) -> np.ndarray:
    """The corners with each `movable` one stepped in turn (four ways, `first_step` modules) while that raises
    the score, the step halved when none does, down to `last_step`, in at most `most_rounds` rounds."""
    best, best_score = corners, score(corners)
    step, rounds = first_step, 0
    while step >= last_step and rounds < most_rounds:
        rounds += 1
        moved = False
        for corner in movable:
            for direction in _DIRECTIONS:
                trial = best.copy()
                trial[corner] += direction * step * module
                trial_score = score(trial)
                if trial_score > best_score:
                    best, best_score, moved = trial, trial_score, True
        if not moved:
            step /= 2
    return best


def _module_contrast(centres: np.ndarray) -> float:
    """How far the modules' middles (`_centres`) stand from their 3 x 3 neighbourhood's mean, in spreads:
    highest when the grid's cells sit on the modules (between two modules, a sample is a mix of both)."""
    neighbourhood = cv2.blur(centres, (3, 3), borderType=cv2.BORDER_REFLECT)
    _mean, spread = cv2.meanStdDev(centres)
    return float(cv2.norm(centres, neighbourhood, cv2.NORM_L1)) / centres.size / (float(spread[0, 0]) or 1.0)


def placement_fit(gray: np.ndarray, corners: np.ndarray, version: int) -> float:
    """How likely `corners` (top-left first) are the symbol's: its fixed patterns showing where they should
    (`_fit`), times how much its cells look like modules (`_module_contrast`). Two finders fit a
    symbol on either side of them; the fixed patterns alone can favour the side over text or paper, where
    the cells are not modules."""
    corners = np.asarray(corners, np.float32).reshape(4, 2)
    size = layout(version).size
    centres = _centres(gray, corners, size)
    return abs(_fit(centres, version)) * _module_contrast(centres)


def _centres(gray: np.ndarray, corners: np.ndarray, size: int) -> np.ndarray:
    """The brightness at each module's centre (a quick look, for comparing placements)."""
    unit, grid = _unit_grid(size)
    homography = cv2.getPerspectiveTransform(unit, corners)
    points = cv2.perspectiveTransform(grid, homography).reshape(size, size, 2)
    return cv2.remap(gray, points[..., 0], points[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(
        np.float32
    )


@functools.cache
def _unit_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """The symbol's corners and its modules' centres, in modules."""
    unit = np.array([[0, 0], [size, 0], [size, size], [0, size]], np.float32)
    steps = np.arange(size, dtype=np.float32) + 0.5
    return unit, np.stack(np.meshgrid(steps, steps), axis=-1).reshape(-1, 1, 2)


def _warp(gray: np.ndarray, corners: np.ndarray, size: int) -> np.ndarray:
    side = (size + 2 * _BORDER) * _PX
    start, end = _BORDER * _PX, (_BORDER + size) * _PX
    target = np.array([[start, start], [end, start], [end, end], [start, end]], np.float32)
    homography = cv2.getPerspectiveTransform(corners, target)
    return cv2.warpPerspective(gray, homography, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def straighten(gray: np.ndarray, corners: np.ndarray, version: int) -> tuple[tuple[np.ndarray, np.ndarray], int] | None:
    """Each module's brightness, the symbol warped square (`_PX` px a module) and fitted to its fixed
    patterns (OpenCV's ECC alignment of a homography, over the fixed modules and the quiet zone only), the
    same as the corners were given, and the quarter turns that bring it upright."""
    size = layout(version).size
    corners = np.asarray(corners, np.float32).reshape(4, 2)
    if cv2.contourArea(corners) < 100:
        return None
    warped = _warp(gray, corners, size)
    turn, light_on_dark = _upright_turn(_cells(warped, size), version)
    if light_on_dark:  # a dark-mode screen: read as if printed
        warped = 255 - warped
    template, mask = _template(version, turn)
    given = _cells(warped, size)
    try:
        start = np.eye(3, dtype=np.float32)
        motion = cv2.MOTION_HOMOGRAPHY
        _score, warp = cv2.findTransformECC(template, warped.astype(np.float32), start, motion, _ECC_CRITERIA, mask, 3)
    except cv2.error:
        return (given, given), turn  # did not converge: the corners as they were given
    side = warped.shape[0]
    fitted = cv2.warpPerspective(
        warped, warp, (side, side), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
    )
    return (_cells(fitted, size), given), turn


def _cells(straight: np.ndarray, size: int) -> np.ndarray:
    """Each module's brightness: the mean of the middle of its cell (the edges blur into the neighbours)."""
    inner = straight[_BORDER * _PX : (_BORDER + size) * _PX, _BORDER * _PX : (_BORDER + size) * _PX].astype(np.float32)
    cells = inner.reshape(size, _PX, size, _PX)
    return cells[:, 1 : _PX - 1, :, 1 : _PX - 1].mean(axis=(1, 3))


def _template(version: int, turn: int) -> tuple[np.ndarray, np.ndarray]:
    """The fixed patterns and quiet zone as an image (turned `turn` quarter turns), and the mask of where
    the template says something (data modules say nothing)."""
    fixed = layout(version).fixed
    padded = np.pad(np.rot90(fixed, -turn), _BORDER, constant_values=0)
    image = np.where(padded == 1, 0.0, 255.0).astype(np.float32)
    known = (padded >= 0).astype(np.uint8)
    scale = np.ones((_PX, _PX), np.float32)
    return np.kron(image, scale), np.kron(known, np.ones((_PX, _PX), np.uint8))


def _upright_turn(cells: np.ndarray, version: int) -> tuple[int, bool]:
    """The quarter turns that put the grid's fixed patterns where the finders go, and whether the symbol
    is light on dark (a phone in dark mode)."""
    fits = [_fit(np.rot90(cells, turn), version) for turn in range(4)]
    turn = int(np.argmax(np.abs(fits)))
    return turn, fits[turn] < 0


def _fit(cells: np.ndarray, version: int) -> float:
    """How well the grid shows the fixed patterns upright: light modules' mean less dark ones', in spreads."""
    dark, light = _fixed_places(version)
    flat = cells.ravel()
    _mean, spread = cv2.meanStdDev(flat)
    return float(flat[light].mean() - flat[dark].mean()) / (float(spread[0, 0]) or 1.0)


@functools.cache
def _fixed_places(version: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of the modules fixed dark, and of those fixed light."""
    fixed = layout(version).fixed.ravel()
    return np.flatnonzero(fixed == 1), np.flatnonzero(fixed == 0)


def darkness(cells: np.ndarray, version: int) -> Reading:
    """How dark each module reads: 0 light .. 1 dark, near 0.5 where it can hardly tell; with how many of
    the fixed modules read as they are (then set to what they are).

    Each module is first measured against its neighbourhood's light and dark. Blur (defocus, motion, a far
    code) then still mixes some of each neighbour into it: how much is learnt from the modules whose value
    the standard fixes, and taken back out, the neighbours' values being those read the round before.
    (Measured on development frames with the symbols' true corners: 15-16 of 78 frames nobody reads decode
    so, 12 on the plain measure, 13 when the one reading the fixed modules better is chosen.)
    """
    local_mean = cv2.blur(cells, (7, 7), borderType=cv2.BORDER_REFLECT)
    spread = cv2.blur(np.abs(cells - local_mean), (7, 7), borderType=cv2.BORDER_REFLECT)
    overall = float(np.mean(np.abs(cells - cells.mean()))) or 1.0
    measured = (local_mean - cells) / np.maximum(spread, 1e-3)  # dark > 0 > light, in local spreads
    fixed = layout(version).fixed
    known = fixed >= 0
    model = _blur_model(measured, fixed)
    reading = np.clip(0.5 + measured / 4, 0, 1) if model is None else _unblur(measured, fixed, model)
    fits = float(((reading[known] > 0.5) == (fixed[known] == 1)).mean())
    result = np.where(known, fixed, reading).astype(np.float64)
    # Where the neighbourhood has next to no contrast (burnt out, covered), keep the guess but as the least
    # sure of all: Reed-Solomon erases those codewords first.
    flat = (spread < _FLAT * overall) & ~known
    result[flat] = 0.5 + (result[flat] - 0.5) * _FLAT_TRUST
    return Reading(result, fits)


def _unblur(measured: np.ndarray, fixed: np.ndarray, model: tuple[float, float, float, float]) -> np.ndarray:
    """Every module's darkness with its neighbours' share taken out (fixed ones read like the rest)."""
    base, own, side, corner = model
    known = fixed >= 0
    value = (measured > 0).astype(np.float32)
    for _round in range(3):
        sides, corners = _neighbours(np.where(known, fixed, value).astype(np.float32))
        value = np.clip((measured - base - side * sides - corner * corners) / own, 0, 1).astype(np.float32)
    return value


_SIDES = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], np.float32)
_CORNERS = np.array([[1, 0, 1], [0, 0, 0], [1, 0, 1]], np.float32)


def _neighbours(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sides = cv2.filter2D(values, -1, _SIDES, borderType=cv2.BORDER_CONSTANT)
    corners = cv2.filter2D(values, -1, _CORNERS, borderType=cv2.BORDER_CONSTANT)
    return sides, corners


def _blur_model(measured: np.ndarray, fixed: np.ndarray) -> tuple[float, float, float, float] | None:
    """How a module's measure depends on its own value and its neighbours' (side and corner), fitted on the
    fixed modules whose neighbours are all fixed too; None when the fit makes no sense."""
    known = (fixed >= 0).astype(np.float32)
    all_known = cv2.erode(known, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
    values = fixed.astype(np.float32)
    sides, corners = _neighbours(np.where(fixed >= 0, values, 0).astype(np.float32))
    rows = np.column_stack([np.ones(all_known.sum()), values[all_known], sides[all_known], corners[all_known]])
    solution, *_ = np.linalg.lstsq(rows, measured[all_known], rcond=None)
    base, own, side, corner = (float(v) for v in solution)
    if not own > 0.5:
        return None
    return base, own, side, corner
