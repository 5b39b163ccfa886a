"""The scene in front of the kiosk camera (see bench/camera_model.py): the printed ticket or the phone showing
it, the hand holding it, the hall's light and the background; all as radiance on the frame's pixel grid,
before the lens blurs it and the sensor counts its photons.

Radiance is relative: 1.0 is white paper (reflectance 1) in a bright hall (light 1.0), in BGR.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import cv2
import numpy as np

from bench.ticket_prints import PX_PER_MM, PrintedTicket, qr_matrix

if TYPE_CHECKING:
    from bench.camera_model import Shot

_SKIN_BGR = np.float32([0.33, 0.42, 0.62])  # reflectance of a thumb
_PHONE_MM = (72.0, 150.0)  # body, screen inside it with a 3 mm bezel
SCREEN_QR_MM = 44.0  # the code's side on the phone screen, quiet zone excluded
_SCREEN_QR_DOWN_MM = -15.0  # the code's centre above the screen's centre (the ticket's text is below it)
_SCREEN_PITCH_MM = 25.4 / 400  # a 400 ppi phone
_BLACK_SCREEN = 0.01  # light a black pixel still leaks


def project(h: np.ndarray, points_mm) -> np.ndarray:
    return cv2.perspectiveTransform(np.float64(points_mm).reshape(-1, 1, 2), h).reshape(-1, 2)


def scale_at(h: np.ndarray, point: np.ndarray) -> float:
    """The largest px-per-mm of the projection near ``point``: how fine a texture the frame can show there."""
    p = project(h, [point, point + [1, 0], point + [0, 1]])
    return max(float(np.hypot(*(p[1] - p[0]))), float(np.hypot(*(p[2] - p[0]))))


def illuminant(warm: float) -> np.ndarray:
    """The light's colour (BGR): tungsten is orange, daylight blue; the white balance undoes most of it."""
    warm_bgr, cold_bgr = np.float32([0.6, 0.85, 1.15]), np.float32([1.15, 1.0, 0.85])
    return (1 + warm) / 2 * warm_bgr + (1 - warm) / 2 * cold_bgr


def light_field(shot: Shot, rng: np.random.Generator) -> np.ndarray:
    """Illuminance over the frame: the hall's level, falling off across it (a window, a lamp to one side)."""
    width, height = shot.size
    angle = rng.uniform(0, 2 * math.pi)
    xs = np.linspace(0, 1, width, dtype=np.float32)[None, :] * math.cos(angle)
    ys = np.linspace(0, 1, height, dtype=np.float32)[:, None] * math.sin(angle)
    ramp = xs + ys
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    return shot.light * (1 - shot.light_gradient * ramp)


def background(shot: Shot, rng: np.random.Generator) -> np.ndarray:
    """Reflectance (BGR) of what is behind the ticket: a counter, a car's dashboard, clutter."""
    width, height = shot.size
    base = rng.uniform(0.04, 0.45, 3).astype(np.float32)
    texture = rng.normal(0, 1, (max(2, height // 40), max(2, width // 40), 1)).astype(np.float32)
    texture = cv2.resize(texture, (width, height), interpolation=cv2.INTER_CUBIC)[:, :, None]
    image = np.clip(base * (1 + 0.25 * texture), 0.01, 0.9).astype(np.float32)
    for _ in range(int(rng.integers(2, 6))):
        colour = tuple(float(c) for c in rng.uniform(0.02, 0.7, 3))
        p0 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        p1 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        if rng.random() < 0.5:
            cv2.line(image, p0, p1, colour, int(rng.integers(2, 12)), cv2.LINE_AA)
        else:
            cv2.rectangle(image, p0, p1, colour, -1)
    return image


def glare(shot: Shot, h_mm: np.ndarray, qr_side_mm: float, rng: np.random.Generator) -> np.ndarray:
    """A lamp's specular reflection on the glossy toner or the phone's glass, somewhere over the code: added
    light that does not depend on what is printed under it."""
    width, height = shot.size
    spot = rng.uniform(-0.35, 0.35, 2) * qr_side_mm
    centre = project(h_mm, [spot])[0]
    sigma = shot.glare_radius * qr_side_mm * scale_at(h_mm, np.zeros(2))
    xs = (np.arange(width, dtype=np.float32) - centre[0]) ** 2
    ys = (np.arange(height, dtype=np.float32) - centre[1]) ** 2
    blob = np.exp(-(ys[:, None] + xs[None, :]) / (2 * sigma**2))
    return shot.glare * shot.light * blob.astype(np.float32)


# --- the printed ticket ------------------------------------------------------------------------------------------


def _level(reflectance: np.ndarray, px_per_mm_needed: float) -> tuple[np.ndarray, float]:
    """The print pre-filtered (Gaussian pyramid) to the coarsest level still finer than the frame needs, so a
    distant ticket is integrated, not point-sampled, and its modules do not alias away."""
    image, px_per_mm = reflectance, PX_PER_MM
    while px_per_mm / 2 >= px_per_mm_needed and min(image.shape) > 64:
        image, px_per_mm = cv2.pyrDown(image), px_per_mm / 2
    return image, px_per_mm


def _print_defects(reflectance: np.ndarray, px_per_mm: float, shot: Shot, rng: np.random.Generator) -> np.ndarray:
    """Reflectance 0..1 of the printed sheet: toner density (faded print), toner gaps, paper brightness."""
    printed = 1 - reflectance.astype(np.float32) / 255  # 1 where toner covers the paper
    if shot.toner_gaps > 0:
        printed *= 1 - _toner_gaps(printed.shape, px_per_mm, shot.toner_gaps, rng)
    paper = float(rng.uniform(0.8, 0.9))
    return paper - (paper - shot.ink) * printed


def _toner_gaps(shape: tuple[int, ...], px_per_mm: float, share: float, rng: np.random.Generator) -> np.ndarray:
    """0..1 missing toner: thin vertical streaks (a worn drum, along the paper's feed) where half the toner is
    missing, and a fine speckle of partly missing toner; ``share`` is roughly the area touched."""
    height, width = shape
    columns = max(4, int(width / px_per_mm * 2))  # streaks about half a millimetre wide
    streaks = rng.random((1, columns), dtype=np.float32) > 1 - share * 0.4
    streaks = cv2.resize(streaks.astype(np.float32) * 0.5, (width, 1), interpolation=cv2.INTER_LINEAR)
    grain = (max(2, int(height / px_per_mm * 3)), max(2, int(width / px_per_mm * 3)))  # a third of a mm
    speckle = cv2.resize(rng.random(grain, dtype=np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    dropouts = np.clip((speckle - (1 - share * 0.5)) * 3, 0, 0.6)
    return np.clip(np.repeat(streaks, height, axis=0) + dropouts, 0, 0.9)


def _creases(
    reflectance: np.ndarray, px_per_mm: float, qr_centre_px: np.ndarray, shot: Shot, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Folds across the code: the paper on each side of a fold faces the light differently (shading), the ridge
    catches or loses light (a line), and the bent paper moves (a small warp). Returns reflectance and shading."""
    height, width = reflectance.shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    map_x, map_y = xs.copy(), ys.copy()
    shading = np.ones_like(reflectance)
    for _fold in range(shot.creases):
        angle = rng.uniform(0, math.pi)
        normal = np.float32([math.cos(angle), math.sin(angle)])
        offset = rng.uniform(-8, 8) * px_per_mm
        distance = (xs - qr_centre_px[0]) * normal[0] + (ys - qr_centre_px[1]) * normal[1] - offset
        side = np.tanh(distance / (0.6 * px_per_mm))
        shift = shot.crease_mm * px_per_mm * side
        map_x -= shift * normal[0]
        map_y -= shift * normal[1]
        shading *= 1 + 0.15 * shot.crease_mm * side * rng.choice([-1, 1])
        ridge = np.exp(-((distance / (0.35 * px_per_mm)) ** 2))
        shading *= 1 + rng.uniform(-0.35, 0.25) * ridge
    bent = cv2.remap(reflectance, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return bent, shading


def paper_scene(
    ticket: PrintedTicket, shot: Shot, h_mm: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The ticket's reflectance (and its shading) as the frame sees it, with the mask of where the sheet is."""
    left, top, side = ticket.qr_mm
    centre_mm = np.float64([left + side / 2, top + side / 2])
    texture, px_per_mm = _level(ticket.reflectance, scale_at(h_mm, np.zeros(2)))
    reflectance = _print_defects(texture, px_per_mm, shot, rng)
    shading = np.ones_like(reflectance)
    if shot.creases:
        reflectance, shading = _creases(reflectance, px_per_mm, centre_mm * px_per_mm, shot, rng)
    to_plane = np.float64([[1 / px_per_mm, 0, -centre_mm[0]], [0, 1 / px_per_mm, -centre_mm[1]], [0, 0, 1]])
    h = h_mm @ to_plane
    size = shot.size
    warped = cv2.warpPerspective(reflectance * shading, h, size, flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.ones_like(reflectance), h, size, flags=cv2.INTER_LINEAR)
    return warped, mask


def thumb_mask(qr_side_mm: float, module_mm: float, shot: Shot, h_mm: np.ndarray, rng) -> np.ndarray:
    """Where the thumb holding the ticket covers it: an 18 mm wide thumb coming in across one edge of the code,
    its tip ``shot.thumb`` modules inside the code; with ``shot.thumb_on_finder`` over a finder pattern,
    otherwise beside them."""
    half = qr_side_mm / 2
    edge = int(rng.integers(0, 4))  # top, right, bottom, left
    outward = np.float64([(0, -1), (1, 0), (0, 1), (-1, 0)][edge])
    if shot.thumb_on_finder:  # finder patterns: top-left, top-right, bottom-left; one on this edge
        offset = half - 3.5 * module_mm
        on_edge = [c for c in ((-1, -1), (1, -1), (-1, 1)) if np.dot(c, outward) > 0]
        centre = np.float64(on_edge[int(rng.integers(0, len(on_edge)))]) * offset
    else:  # between the finder patterns
        centre = np.float64([outward[1], -outward[0]]) * rng.uniform(-0.25, 0.25) * qr_side_mm
    tip = centre - outward * np.dot(centre, outward) + outward * (half - shot.thumb * module_mm)
    width, length = 18.0, 60.0
    t = np.linspace(0, 2 * math.pi, 48)
    outline = np.column_stack([np.cos(t) * length / 2, np.sin(t) * width / 2])  # an ellipse along x
    angle = math.atan2(outward[1], outward[0]) + rng.uniform(-0.4, 0.4)
    rot = np.float64([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    outline = outline @ rot.T + tip + rot @ np.float64([length / 2, 0])
    mask = np.zeros(shot.size[::-1], np.float32)
    cv2.fillPoly(mask, [np.round(project(h_mm, outline) * 4).astype(np.int32)], 1.0, cv2.LINE_AA, shift=2)
    return cv2.GaussianBlur(mask, (0, 0), 1.2)


# --- the phone showing the ticket --------------------------------------------------------------------------------


def _phone_box(h_mm: np.ndarray, size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """The frame rectangle (x0, y0, x1, y1) the phone covers, or None when it is out of frame."""
    half_w, half_h = _PHONE_MM[0] / 2, _PHONE_MM[1] / 2
    centre_y = -_SCREEN_QR_DOWN_MM
    outline = [[-half_w, centre_y - half_h], [half_w, centre_y - half_h], [half_w, centre_y + half_h]]
    corners = project(h_mm, [*outline, [-half_w, centre_y + half_h]])
    x0, y0 = np.floor(corners.min(axis=0)).astype(int)
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 1
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(size[0], x1), min(size[1], y1)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _plane_coordinates(h_mm: np.ndarray, box: tuple[int, int, int, int], samples: int) -> np.ndarray:
    """The phone-plane mm seen by ``samples`` x ``samples`` points of every pixel in ``box``: the sensor
    integrates over its pixel, and how finely it does sets how much moiré the screen's grid makes."""
    x0, y0, x1, y1 = box
    offsets = (np.arange(samples, dtype=np.float32) + 0.5) / samples
    xs = (np.arange(x0, x1, dtype=np.float32)[:, None] + offsets[None, :]).ravel()
    ys = (np.arange(y0, y1, dtype=np.float32)[:, None] + offsets[None, :]).ravel()
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 1, 2)
    plane = cv2.perspectiveTransform(grid, np.linalg.inv(h_mm)).reshape(len(ys), len(xs), 2)
    return plane


def _screen_pixels(u: np.ndarray, v: np.ndarray, code: str, dark_mode: bool) -> np.ndarray:
    """What the screen shows at plane mm (u, v): the QR (quiet zone included) on the app's background."""
    matrix = qr_matrix(code)
    modules = matrix.shape[0] - 8
    module_mm = SCREEN_QR_MM / modules
    col = np.floor((u + SCREEN_QR_MM / 2) / module_mm).astype(np.int32) + 4
    row = np.floor((v + SCREEN_QR_MM / 2) / module_mm).astype(np.int32) + 4
    inside = (col >= 0) & (col < matrix.shape[1]) & (row >= 0) & (row < matrix.shape[0])
    dark = np.zeros(u.shape, bool)
    dark[inside] = matrix[row[inside], col[inside]]
    if dark_mode:  # light modules on a black app
        dark = ~dark
    return np.where(dark, _BLACK_SCREEN, 1.0).astype(np.float32)


def _subpixels(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The screen's RGB stripe grid (BGR weights averaging 1): each pixel is a red, green and blue stripe with a
    black matrix between rows."""
    fx = np.mod(u / _SCREEN_PITCH_MM, 1.0)
    fy = np.mod(v / _SCREEN_PITCH_MM, 1.0)
    lit_row = fy < 0.8
    weights = np.empty((*u.shape, 3), np.float32)
    for channel, third in ((2, 0), (1, 1), (0, 2)):  # R, G, B from left to right
        in_stripe = (fx >= third / 3 + 0.03) & (fx < (third + 1) / 3 - 0.03)
        weights[..., channel] = in_stripe & lit_row
    return weights / (0.8 * (1 / 3 - 0.06))


def phone_scene(code: str, shot: Shot, h_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Emitted radiance (BGR) of the phone's screen and the mask of the phone's body, on the frame's grid."""
    radiance = np.zeros((*shot.size[::-1], 3), np.float32)
    body = np.zeros(shot.size[::-1], np.float32)
    box = _phone_box(h_mm, shot.size)
    if box is None:
        return radiance, body
    samples = shot.supersample
    plane = _plane_coordinates(h_mm, box, samples)
    u, v = plane[..., 0], plane[..., 1] + _SCREEN_QR_DOWN_MM
    in_body = (np.abs(u) < _PHONE_MM[0] / 2) & (np.abs(v) < _PHONE_MM[1] / 2)
    in_screen = (np.abs(u) < _PHONE_MM[0] / 2 - 3) & (np.abs(v) < _PHONE_MM[1] / 2 - 3)
    pixels = _screen_pixels(plane[..., 0], plane[..., 1], code, shot.screen == "dark")
    emitted = (pixels * in_screen)[..., None] * _subpixels(u, v) * shot.screen_nits
    if shot.screen_lens_px > 0:  # the lens blurs before the sensor samples: that is what tames moiré
        emitted = cv2.GaussianBlur(emitted, (0, 0), shot.screen_lens_px * samples)
    x0, y0, x1, y1 = box
    shape = (y1 - y0, samples, x1 - x0, samples)
    radiance[y0:y1, x0:x1] = emitted.reshape(*shape, 3).mean(axis=(1, 3))
    body[y0:y1, x0:x1] = in_body.astype(np.float32).reshape(shape).mean(axis=(1, 3))
    return radiance, body


def skin(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A thumb's reflectance (BGR) with the shading of its roundness, on the frame's grid."""
    width, height = size
    tone = _SKIN_BGR * rng.uniform(0.6, 1.2)
    shade = cv2.resize(rng.uniform(0.75, 1.1, (3, 3)).astype(np.float32), (width, height))
    return tone * shade[:, :, None]
