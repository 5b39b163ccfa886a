"""A physical camera for the decode benchmark: a real printed ticket (or a phone showing one) in front of a
kiosk webcam, photographed in the order light takes.

1. scene: the cut ticket's reflectance (rasterised from the real PDF) with its print defects (faded toner,
   toner gaps, creases) lit by the hall's light (level, colour, gradient), a specular glare, a thumb holding it,
   on a cluttered background; or a phone whose screen emits the code (bright, dim, dark mode) through its
   sub-pixel grid and the reflections on its glass;
2. optics: a pinhole projection of the ticket's plane at a distance and pose (perspective tilt, roll), the
   lens's own blur, defocus (a disc), the hand's motion during the exposure (a line), vignetting;
3. sensor: auto exposure (time up to the frame time, then analogue gain), an RGGB Bayer mosaic, photon shot
   noise, read noise, 10-bit clipping;
4. ISP: demosaic, white balance, gamma, denoise when the gain is high, sharpening, JPEG.

Every number is in physical units (mm, seconds, relative light) and every frame is deterministic from
its :class:`Shot` and seed. The conditions and their severities are in :mod:`bench.camera_conditions`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from bench.camera_scene import (
    SCREEN_QR_MM,
    background,
    glare,
    illuminant,
    light_field,
    paper_scene,
    phone_scene,
    project,
    skin,
    thumb_mask,
)
from bench.ticket_prints import PrintedTicket

#: Horizontal field of view of the kiosk webcam (both resolutions: the 720p mode sees the same width).
HFOV_DEG = 60.0
#: The QR side (mm) the distances are stated against: the 6-per-sheet print of the ticket before this work.
REFERENCE_QR_MM = 35.0
_FULL_WELL_E = 6000.0  # electrons a pixel holds before it clips
_READ_NOISE_E = 4.0
_PAPER_E_PER_S = 3000.0 / 0.005  # electrons/s from white paper (reflectance 1) in a bright hall (light 1.0)
_AE_TARGET = 0.42  # auto exposure aims the metered mean at this fraction of full scale


@dataclass(frozen=True)
class Shot:
    """Everything physical about one frame."""

    size: tuple[int, int]
    code_px: float  # side of the reference QR (35 mm) at this distance, in px: sets the distance
    tilt_deg: float = 0.0  # the ticket's plane turned away from the camera
    tilt_axis_deg: float = 0.0
    roll_deg: float = 0.0  # in-plane rotation
    corner_out_modules: float = 0.0  # the QR's corner without a finder pattern pushed out of frame
    light: float = 1.0  # illuminance, 1.0 = a bright hall; a dim hall 0.1, night under a lamp 0.01
    light_gradient: float = 0.0  # fraction the light falls across the frame
    warm: float = 0.0  # illuminant colour: -1 cold daylight .. 1 warm tungsten
    speed_px_s: float = 0.0  # the hand's motion on the image during the exposure
    motion_angle_deg: float = 0.0
    defocus_px: float = 0.0  # radius of the defocus disc
    frame_time_s: float = 1 / 30  # longest exposure auto exposure may take
    max_gain: float = 16.0
    glare: float = 0.0  # peak specular radiance over paper white
    glare_radius: float = 0.2  # as a fraction of the QR's side
    jpeg_quality: int = 85
    ink: float = 0.05  # reflectance of printed black (paper ~0.85); faded toner is lighter
    toner_gaps: float = 0.0  # share of the printed area in streaks and dropouts of missing toner
    creases: int = 0
    crease_mm: float = 0.0  # how far a fold moves the paper
    thumb: float = 0.0  # how many modules into the code a thumb reaches (0: no thumb)
    thumb_on_finder: bool = False  # the thumb over a finder pattern rather than between them
    screen: str | None = None  # "light" or "dark" (mode): the code on a phone screen instead of paper
    screen_nits: float = 0.0  # screen white relative to paper white in a bright hall
    supersample: int = 3  # sensor samples per pixel side on screens: fewer = more moiré
    screen_lens_px: float = 0.6  # the lens's blur before the sensor samples a screen: less = more moiré
    centre_px: tuple[float, float] | None = None  # where the QR's centre is; None: anywhere the code fits


def focal_px(size: tuple[int, int]) -> float:
    return size[0] / 2 / math.tan(math.radians(HFOV_DEG) / 2)


def distance_mm(shot: Shot) -> float:
    """How far the ticket is from the lens: where the reference QR would be ``code_px`` wide."""
    return focal_px(shot.size) * REFERENCE_QR_MM / shot.code_px


# --- geometry ----------------------------------------------------------------------------------------------------


def _rotation(shot: Shot) -> np.ndarray:
    axis_angle = math.radians(shot.tilt_axis_deg)
    axis = np.float64([math.cos(axis_angle), math.sin(axis_angle), 0]) * math.radians(shot.tilt_deg)
    tilt, _ = cv2.Rodrigues(axis)
    roll, _ = cv2.Rodrigues(np.float64([0, 0, math.radians(shot.roll_deg)]))
    return roll @ tilt


def plane_homography(shot: Shot, centre_px: tuple[float, float]) -> np.ndarray:
    """Plane mm (origin at the QR's centre, x right, y down the printed page) → frame px."""
    f = focal_px(shot.size)
    k = np.float64([[f, 0, shot.size[0] / 2], [0, f, shot.size[1] / 2], [0, 0, 1]])
    rotation = _rotation(shot)
    translation = distance_mm(shot) * np.linalg.inv(k) @ np.float64([centre_px[0], centre_px[1], 1])
    return k @ np.column_stack([rotation[:, 0], rotation[:, 1], translation])


def _square(side: float) -> np.ndarray:
    half = side / 2
    return np.float64([[-half, -half], [half, -half], [half, half], [-half, half]])


def aim(shot: Shot, qr_side_mm: float, module_mm: float, rng: np.random.Generator) -> np.ndarray:
    """The plane-to-frame homography with the QR (and a module of its quiet zone) inside the frame, placed at
    random (or at ``shot.centre_px``); with ``corner_out_modules`` its corner without a finder pattern is then
    pushed past the nearest edge. A code too big for the frame at that distance is held further away until it
    fits, as the person holding it does when the kiosk does not beep."""
    h = None
    for _step_back in range(12):
        h = plane_homography(shot, shot.centre_px or (shot.size[0] / 2, shot.size[1] / 2))
        placed = h if shot.centre_px else _place(shot, qr_side_mm + 2 * module_mm, rng)
        if placed is not None:
            h = placed
            break
        shot = replace(shot, code_px=shot.code_px * 0.9)
    if shot.corner_out_modules > 0:
        h = _push_corner_out(h, shot, qr_side_mm, module_mm)
    return h


def _place(shot: Shot, side_mm: float, rng: np.random.Generator) -> np.ndarray | None:
    """A homography putting a square of ``side_mm`` around the code wholly in frame at a random spot, if any."""
    width, height = shot.size
    outline = _square(side_mm)
    for attempt in range(40):
        spread = 0.4 * (1 - attempt / 40)  # fall back towards the centre when the code barely fits
        centre = (width * (0.5 + rng.uniform(-spread, spread)), height * (0.5 + rng.uniform(-spread, spread)))
        candidate = plane_homography(shot, centre)
        corners = project(candidate, outline)
        if (corners >= 1).all() and (corners[:, 0] < width - 1).all() and (corners[:, 1] < height - 1).all():
            return candidate
    return None


def _push_corner_out(h: np.ndarray, shot: Shot, qr_side_mm: float, module_mm: float) -> np.ndarray:
    """Shift the frame so the QR's bottom-right corner (no finder pattern there) is past the frame edge it points
    at by ``corner_out_modules`` modules: with a diagonal code that corner is the code's outermost point there."""
    width, height = shot.size
    centre, corner, inner = project(
        h, [[0, 0], [qr_side_mm / 2, qr_side_mm / 2], [qr_side_mm / 2 - module_mm, qr_side_mm / 2 - module_mm]]
    )
    depth = shot.corner_out_modules * float(np.hypot(*(corner - inner))) / math.sqrt(2)
    dx, dy = corner - centre
    if abs(dx) > abs(dy):
        shift = (width - corner[0] + depth if dx > 0 else -(corner[0] + depth), 0.0)
    else:
        shift = (0.0, height - corner[1] + depth if dy > 0 else -(corner[1] + depth))
    return np.float64([[1, 0, shift[0]], [0, 1, shift[1]], [0, 0, 1]]) @ h


# --- optics --------------------------------------------------------------------------------------------------------


def auto_exposure(metered: float, shot: Shot) -> tuple[float, float]:
    """Exposure time and analogue gain bringing the metered radiance to the target: the longest time the frame
    allows first (no gain noise), then gain up to the sensor's limit; darker than that the frame is just dark."""
    needed = _AE_TARGET * _FULL_WELL_E / max(metered * _PAPER_E_PER_S, 1e-9)  # time x gain
    time_s = float(np.clip(needed, 1 / 4000, shot.frame_time_s))
    return time_s, float(np.clip(needed / time_s, 1.0, shot.max_gain))


def point_spread(shot: Shot, exposure_s: float) -> np.ndarray:
    """The lens's blur (a small Gaussian), defocus (a disc) and the hand's motion during the exposure (a line),
    convolved into one kernel."""
    motion = shot.speed_px_s * exposure_s
    radius = int(math.ceil(shot.defocus_px + motion / 2)) + 3
    size = 2 * radius + 1
    scale = 4  # drawn 4x finer, then integrated, so sub-pixel discs and lines keep their area
    canvas = np.zeros((size * scale, size * scale), np.float32)
    centre = (size * scale) // 2
    disc = max(1, round(shot.defocus_px * scale))
    cv2.circle(canvas, (centre, centre), disc, 1.0, -1, cv2.LINE_AA)
    kernel = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
    if motion > 0.5:
        line = np.zeros((size * scale, size * scale), np.float32)
        angle = math.radians(shot.motion_angle_deg)
        half = np.float64([math.cos(angle), math.sin(angle)]) * motion * scale / 2
        p0 = np.round((centre - half) * 16).astype(int)
        p1 = np.round((centre + half) * 16).astype(int)
        cv2.line(line, tuple(p0), tuple(p1), 1.0, scale, cv2.LINE_AA, shift=4)
        kernel = cv2.filter2D(kernel, -1, cv2.resize(line, (size, size), interpolation=cv2.INTER_AREA))
    kernel = cv2.GaussianBlur(kernel, (0, 0), 0.45)
    return kernel / float(kernel.sum())


def _vignetting(size: tuple[int, int]) -> np.ndarray:
    width, height = size
    xs = (np.arange(width, dtype=np.float32) - width / 2) / (width / 2)
    ys = (np.arange(height, dtype=np.float32) - height / 2) / (width / 2)
    return 1 - 0.3 * (xs[None, :] ** 2 + ys[:, None] ** 2) / 1.56


# --- sensor and ISP ------------------------------------------------------------------------------------------------


def sensor(radiance: np.ndarray, exposure_s: float, gain: float, rng: np.random.Generator) -> np.ndarray:
    """The RGGB Bayer mosaic the sensor reads out (10-bit): photons counted with shot noise, read noise, gain,
    clipping at full scale."""
    qe = np.float32([0.7, 1.0, 0.8])  # B, G, R: green pixels are the most sensitive
    electrons = np.empty(radiance.shape[:2], np.float32)
    for (row, col), channel in (((0, 0), 2), ((0, 1), 1), ((1, 0), 1), ((1, 1), 0)):
        electrons[row::2, col::2] = radiance[row::2, col::2, channel] * qe[channel]
    electrons *= _PAPER_E_PER_S * exposure_s
    np.clip(electrons, 0, _FULL_WELL_E * 4, out=electrons)
    noise = rng.standard_normal(electrons.shape, dtype=np.float32)
    electrons += noise * np.sqrt(electrons + _READ_NOISE_E**2)
    levels = electrons * (gain * 1023 / _FULL_WELL_E)
    return np.clip(np.round(levels), 0, 1023).astype(np.uint16)


def isp(mosaic: np.ndarray, gain: float, jpeg_quality: int) -> np.ndarray:
    """What the webcam's image processor makes of the mosaic: demosaic, grey-world white balance, gamma,
    denoise when the gain is high, sharpening, and the JPEG it sends over USB."""
    image = cv2.cvtColor(mosaic, cv2.COLOR_BayerBG2BGR).astype(np.float32) / 1023
    # White balance on the brightest fifth of the frame (the ticket's paper, a screen), as webcams weight
    # bright near-neutral pixels; a plain grey-world average would tint the paper with the background's colour.
    pixels = image.reshape(-1, 3)[::7]
    bright = pixels[pixels[:, 1] >= np.percentile(pixels[:, 1], 80)]
    means = bright.mean(axis=0) + 1e-4
    image *= np.clip(means[1] / means, 0.5, 2.5)
    np.clip(image, 0, 1, out=image)
    image = cv2.pow(image, 1 / 2.2)
    if gain > 3:
        image = cv2.GaussianBlur(image, (0, 0), min(1.3, 0.12 * gain))
    image = cv2.addWeighted(image, 1.6, cv2.GaussianBlur(image, (0, 0), 1.0), -0.6, 0)
    frame = np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
    if not ok:  # pragma: no cover - OpenCV always has a JPEG encoder
        raise RuntimeError("JPEG encoding failed")
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR)


# --- one frame -----------------------------------------------------------------------------------------------------


def _paper_radiance(ticket: PrintedTicket, shot: Shot, h_mm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Radiance of the whole scene with the printed ticket in it (reflectance x light, plus glare)."""
    colour = illuminant(shot.warm)
    light = light_field(shot, rng)[:, :, None] * colour
    reflectance, sheet = paper_scene(ticket, shot, h_mm, rng)
    scene = background(shot, rng)
    scene += (reflectance[:, :, None] - scene) * sheet[:, :, None]
    if shot.thumb > 0:
        thumb = thumb_mask(ticket.qr_mm[2], ticket.module_mm, shot, h_mm, rng)[:, :, None]
        scene += (skin(shot.size, rng) - scene) * thumb
    radiance = scene * light
    if shot.glare > 0:
        radiance += glare(shot, h_mm, ticket.qr_mm[2], rng)[:, :, None] * colour
    return radiance


def _phone_radiance(code: str, shot: Shot, h_mm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Radiance of the scene with a phone showing the code: the screen emits, its black body and glass reflect."""
    colour = illuminant(shot.warm)
    light = light_field(shot, rng)[:, :, None] * colour
    emitted, body = phone_scene(code, shot, h_mm)
    scene = background(shot, rng)
    scene += (0.04 - scene) * body[:, :, None]  # glass over black: a few percent of the room comes back
    radiance = scene * light + emitted
    if shot.glare > 0:
        radiance += glare(shot, h_mm, SCREEN_QR_MM, rng)[:, :, None] * colour * body[:, :, None]
    return radiance


def photograph(ticket: PrintedTicket, shot: Shot, seed: int, frame_seed: int | None = None) -> np.ndarray:
    """The BGR frame (JPEG-decoded, ``shot.size``) a kiosk webcam delivers of ``ticket`` under ``shot``.

    ``seed`` draws the scene (background, paper, print defects, where the thumb and the glare are) and
    ``frame_seed`` the sensor's noise: frames of one video share the scene, each has its own noise."""
    rng = np.random.default_rng([seed, 0xCA3E])
    noise = np.random.default_rng([seed if frame_seed is None else frame_seed, 0x5E45])
    side = SCREEN_QR_MM if shot.screen else ticket.qr_mm[2]
    # The placement draws from its own stream: the same seed then gives the same scene for every printed design.
    h_mm = aim(shot, side, side / ticket.modules, np.random.default_rng([seed, 0xA1]))
    if shot.screen:
        radiance = _phone_radiance(ticket.code, shot, h_mm, rng)
    else:
        radiance = _paper_radiance(ticket, shot, h_mm, rng)
    radiance *= _vignetting(shot.size)[:, :, None]
    width, height = shot.size
    metered = float(cv2.mean(radiance[height // 4 : -height // 4, width // 4 : -width // 4])[1])
    exposure_s, gain = auto_exposure(metered, shot)
    radiance = cv2.filter2D(radiance, -1, point_spread(shot, exposure_s), borderType=cv2.BORDER_REFLECT)
    return isp(sensor(radiance, exposure_s, gain, noise), gain, shot.jpeg_quality)
