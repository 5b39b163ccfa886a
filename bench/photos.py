"""Synthetic "camera photos of printed tickets" for decoder tests and benchmarks.

Every image is deterministic from its seed, so a failing read can be reproduced
by its seed alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import segno

BASE32_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
CODE_PREFIX = "PG1"
CODE_BODY_LENGTH = 120

# The ticket box of the printed PDF (170 x 125 mm) at 5 px/mm; its 62 mm QR then has
# 41 modules of about 7.5 px (drawn at 7 px per module).
_PRINT_PX_PER_MM = 5
_BOX_W, _BOX_H = 170 * _PRINT_PX_PER_MM, 125 * _PRINT_PX_PER_MM
_PAPER_MARGIN = 10 * _PRINT_PX_PER_MM  # white paper around the printed box
_CARD_W, _CARD_H = _BOX_W + 2 * _PAPER_MARGIN, _BOX_H + 2 * _PAPER_MARGIN
_QR_MODULE_PRINT_PX = 7


@dataclass(frozen=True)
class Difficulty:
    """Ranges the random photo parameters are drawn from."""

    module_px: tuple[float, float]  # QR module size in a 480-line frame
    max_angle_deg: float
    perspective: float  # max corner jitter, as a fraction of the card size
    blur_sigma: tuple[float, float]
    motion_blur_px: int
    noise_sigma: tuple[float, float]
    jpeg_quality: tuple[int, int]
    light_min: float  # darkest gain of the lighting gradient
    shadow: bool


DIFFICULTIES: dict[str, Difficulty] = {
    "easy": Difficulty(
        module_px=(4.0, 6.0),
        max_angle_deg=10,
        perspective=0.02,
        blur_sigma=(0.0, 0.5),
        motion_blur_px=0,
        noise_sigma=(1.0, 3.0),
        jpeg_quality=(85, 95),
        light_min=0.85,
        shadow=False,
    ),
    # A ticket held under the kiosk camera by a passenger: any orientation, some tilt,
    # slightly out of focus, a cheap sensor and uneven hall lighting.
    "normal": Difficulty(
        module_px=(2.8, 5.0),
        max_angle_deg=180,
        perspective=0.06,
        blur_sigma=(0.3, 1.0),
        motion_blur_px=0,
        noise_sigma=(2.0, 6.0),
        jpeg_quality=(60, 90),
        light_min=0.55,
        shadow=False,
    ),
    "hard": Difficulty(
        module_px=(2.3, 4.0),
        max_angle_deg=180,
        perspective=0.10,
        blur_sigma=(0.6, 1.4),
        motion_blur_px=3,
        noise_sigma=(4.0, 9.0),
        jpeg_quality=(40, 70),
        light_min=0.40,
        shadow=True,
    ),
}


def random_ticket_code(rng: np.random.Generator) -> str:
    """A code shaped like a real ticket code: "PG1" + 120 base32 characters."""
    indexes = rng.integers(0, len(BASE32_ALPHABET), CODE_BODY_LENGTH)
    return CODE_PREFIX + "".join(BASE32_ALPHABET[i] for i in indexes)


def render_qr(code: str, module_px: int = _QR_MODULE_PRINT_PX, border: int = 4) -> np.ndarray:
    """The QR code as a grayscale image (0 = dark module), quiet zone included."""
    matrix = np.array(list(segno.make(code, error="m", micro=False).matrix_iter(border=border)))
    image = np.where(matrix.astype(bool), 0, 255).astype(np.uint8)
    return image.repeat(module_px, axis=0).repeat(module_px, axis=1)


def _render_code128(text: str, module_px: int) -> np.ndarray:
    """A Code 128 barcode (grayscale, no quiet zone), as the ticket PDF prints the short code."""
    import zxingcpp  # only needed for tickets that carry a short code

    barcode = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.Code128)
    bars = np.asarray(barcode.to_image(scale=1, add_quiet_zones=False))[0]
    return np.tile(bars.repeat(module_px), (_PRINT_PX_PER_MM * 14, 1)).astype(np.uint8)


def _render_card(
    code: str, short_code: str | None, rng: np.random.Generator
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The printed ticket box (BGR), laid out like server/tickets/pdf.py, and the QR's
    (x, y, size) on it, quiet zone included."""
    mm = _PRINT_PX_PER_MM
    paper = int(rng.integers(232, 256))
    tint = rng.integers(-6, 4, 3)
    card = np.empty((_CARD_H, _CARD_W, 3), np.uint8)
    card[:] = np.clip(paper + tint, 0, 255).astype(np.uint8)
    ink = (30, 30, 30)
    top, bottom = _PAPER_MARGIN, _PAPER_MARGIN + _BOX_H
    box_right = _PAPER_MARGIN + _BOX_W
    cv2.rectangle(card, (_PAPER_MARGIN, top), (box_right, bottom), (60, 60, 60), 2, cv2.LINE_AA)
    left = _PAPER_MARGIN + 5 * mm
    ticket_no = int(rng.integers(1, 99999))
    cv2.putText(card, f"Gate ticket  #{ticket_no}", (left, top + 13 * mm), cv2.FONT_HERSHEY_DUPLEX, 1.0, ink, 2)
    cv2.putText(
        card, "Valid for one single entry at the port gate.", (left, top + 18 * mm), cv2.FONT_HERSHEY_PLAIN, 1.0, ink
    )
    labels = ["Company", "Vessel / voyage", "Arrival (ETA)", "Valid at the gate", "Services", "Transaction"]
    for row, label in enumerate(labels):
        y = top + 29 * mm + row * 11 * mm
        cv2.putText(card, label, (left, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, ink, 2)
        value = "".join(BASE32_ALPHABET[i] for i in rng.integers(0, 26, int(rng.integers(8, 30))))
        cv2.putText(card, value, (left, y + 5 * mm), cv2.FONT_HERSHEY_SIMPLEX, 0.55, ink, 1)
    groups = [code[:3]] + [code[i : i + 5] for i in range(3, len(code), 5)]
    for line, start in enumerate(range(0, len(groups), 9)):  # the code, typed-in fallback
        text = " ".join(groups[start : start + 9])
        cv2.putText(card, text, (left, bottom - 30 * mm + line * 4 * mm), cv2.FONT_HERSHEY_PLAIN, 0.9, ink)
    if short_code is not None:
        bars = _render_code128(short_code, module_px=2)
        bars_top = bottom - 4 * mm - bars.shape[0]
        card[bars_top : bars_top + bars.shape[0], left : left + bars.shape[1]] = bars[:, :, None]
        cv2.putText(
            card, short_code, (left + bars.shape[1] + 6 * mm, bottom - 9 * mm), cv2.FONT_HERSHEY_PLAIN, 1.1, ink
        )

    qr = render_qr(code)
    size = qr.shape[0]
    border = 4 * _QR_MODULE_PRINT_PX
    qr_x, qr_y = box_right - 5 * mm - size + border, top + 15 * mm - border
    card[qr_y : qr_y + size, qr_x : qr_x + size] = np.minimum(
        card[qr_y : qr_y + size, qr_x : qr_x + size], qr[:, :, None]
    )
    return card, (qr_x, qr_y, size)


def _render_background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A counter / desk surface with low-frequency texture and some clutter."""
    base = rng.integers(60, 200, 3).astype(np.float32)
    texture = rng.normal(0, 1, (max(2, height // 40), max(2, width // 40), 1)).astype(np.float32)
    texture = cv2.resize(texture, (width, height), interpolation=cv2.INTER_CUBIC)[:, :, None]
    background = base + texture * float(rng.uniform(6, 18))
    background = np.clip(background, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(2, 6))):
        colour = tuple(int(c) for c in rng.integers(20, 230, 3))
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        x1, y1 = int(rng.integers(0, width)), int(rng.integers(0, height))
        if rng.random() < 0.5:
            cv2.line(background, (x0, y0), (x1, y1), colour, int(rng.integers(2, 12)))
        else:
            cv2.rectangle(background, (x0, y0), (x1, y1), colour, -1)
    return background


def _card_transform(
    width: int,
    height: int,
    qr_box: tuple[int, int, int],
    level: Difficulty,
    rng: np.random.Generator,
) -> np.ndarray:
    """Perspective transform taking the card into the frame with the whole QR visible."""
    qr_x, qr_y, qr_size = qr_box
    scale_lines = height / 480
    qr_modules = qr_size / _QR_MODULE_PRINT_PX
    card_corners = np.float32([[0, 0], [_CARD_W, 0], [_CARD_W, _CARD_H], [0, _CARD_H]])
    qr_corners = np.float32(
        [[qr_x, qr_y], [qr_x + qr_size, qr_y], [qr_x + qr_size, qr_y + qr_size], [qr_x, qr_y + qr_size]]
    )
    qr_centre = np.float32([qr_x + qr_size / 2, qr_y + qr_size / 2])
    for _attempt in range(100):
        module_px = rng.uniform(*level.module_px) * scale_lines
        scale = module_px * qr_modules / qr_size
        angle = math.radians(rng.uniform(-level.max_angle_deg, level.max_angle_deg))
        rotation = np.float32([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        target = np.float32([rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height])
        destination = (card_corners - qr_centre) @ rotation.T * scale + target
        jitter = rng.uniform(-1, 1, (4, 2)) * level.perspective * _CARD_W * scale
        destination = (destination + jitter).astype(np.float32)
        transform = cv2.getPerspectiveTransform(card_corners, destination)
        mapped_qr = cv2.perspectiveTransform(qr_corners[None], transform)[0]
        margin = 4
        inside = (
            (mapped_qr[:, 0] >= margin).all()
            and (mapped_qr[:, 0] < width - margin).all()
            and (mapped_qr[:, 1] >= margin).all()
            and (mapped_qr[:, 1] < height - margin).all()
        )
        if inside:
            return transform
    raise RuntimeError("could not place the ticket inside the frame")  # pragma: no cover


def _lighting_gain(width: int, height: int, level: Difficulty, rng: np.random.Generator) -> np.ndarray:
    """Uneven lighting: a linear gradient, a vignette and optionally a soft shadow."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    direction = rng.uniform(0, 2 * math.pi)
    along = (xs * math.cos(direction) + ys * math.sin(direction)) / math.hypot(width, height)
    along = (along - along.min()) / max(float(np.ptp(along)), 1e-6)
    low = rng.uniform(level.light_min, min(1.0, level.light_min + 0.25))
    gain = low + (1.05 - low) * along
    radius = np.hypot(xs - width / 2, ys - height / 2) / math.hypot(width / 2, height / 2)
    gain *= 1 - 0.15 * radius**2
    if level.shadow:
        centre = (rng.uniform(0, width), rng.uniform(0, height))
        spread = rng.uniform(0.15, 0.35) * width
        shadow = np.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / (2 * spread**2))
        gain *= 1 - 0.35 * shadow
    return gain.astype(np.float32)


def _difficulty(name: str) -> Difficulty:
    try:
        return DIFFICULTIES[name]
    except KeyError:
        raise ValueError(f"difficulty must be one of {sorted(DIFFICULTIES)}, not {name!r}") from None


def _photo_rng(seed: int, size: tuple[int, int], difficulty: str, stream: int) -> np.random.Generator:
    width, height = size
    level_index = sorted(DIFFICULTIES).index(difficulty)
    return np.random.default_rng([seed, width, height, level_index, stream])


def _place_card(
    code: str, short_code: str | None, frame: np.ndarray, level: Difficulty, rng: np.random.Generator
) -> np.ndarray:
    """The frame (float32) with the ticket card laid on it in perspective."""
    height, width = frame.shape[:2]
    card, qr_box = _render_card(code, short_code, rng)
    transform = _card_transform(width, height, qr_box, level, rng)
    # Shrink the card by area averaging first (a lens integrates light, it does not
    # point-sample), then warp the rest; warping 7-px modules straight to 3 px would alias.
    shrink = min(1.0, math.sqrt(abs(np.linalg.det(transform[:2, :2]))))
    small = cv2.resize(card, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
    transform = transform @ np.diag([1 / shrink, 1 / shrink, 1.0])
    warped = cv2.warpPerspective(small, transform, (width, height), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(
        np.full(small.shape[:2], 255, np.uint8), transform, (width, height), flags=cv2.INTER_LINEAR
    )
    alpha = mask.astype(np.float32) / 255
    return cv2.blendLinear(warped, frame, alpha, 1 - alpha).astype(np.float32)


def _photograph(scene: np.ndarray, level: Difficulty, rng: np.random.Generator) -> np.ndarray:
    """What a cheap camera makes of the scene: uneven light, blur, noise, JPEG."""
    height, width = scene.shape[:2]
    image = scene * _lighting_gain(width, height, level, rng)[:, :, None]
    sigma = rng.uniform(*level.blur_sigma)
    if sigma > 0.05:
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    if level.motion_blur_px:
        length = int(rng.integers(1, level.motion_blur_px + 1))
        if length > 1:
            kernel = np.zeros((length, length), np.float32)
            kernel[length // 2, :] = 1
            centre = (length / 2 - 0.5, length / 2 - 0.5)
            rotation = cv2.getRotationMatrix2D(centre, rng.uniform(0, 180), 1)
            kernel = cv2.warpAffine(kernel, rotation, (length, length))
            image = cv2.filter2D(image, -1, kernel / max(float(kernel.sum()), 1e-6))
    noise_sigma = np.float32(rng.uniform(*level.noise_sigma))
    # Luma-only sensor noise: a third of the cost of per-channel noise, same effect on decoding.
    image += (rng.standard_normal(image.shape[:2], dtype=np.float32) * noise_sigma)[:, :, None]
    image = np.clip(image, 0, 255).astype(np.uint8)

    quality = int(rng.integers(level.jpeg_quality[0], level.jpeg_quality[1] + 1))
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - OpenCV always has a JPEG encoder
        raise RuntimeError("JPEG encoding failed")
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR)


def make_ticket_photo(
    code: str,
    size: tuple[int, int] = (640, 480),
    seed: int = 0,
    difficulty: str = "normal",
    short_code: str | None = None,
) -> np.ndarray:
    """A BGR camera frame of size (width, height) showing a printed ticket carrying `code`.

    With `short_code` the ticket also carries it as a Code 128 barcode, as printed tickets
    do; its bars are 3.6 times finer than the QR modules, so at kiosk distance it is
    usually too fine for the camera to resolve.
    """
    level = _difficulty(difficulty)
    rng = _photo_rng(seed, size, difficulty, stream=1)
    background = _render_background(*size, rng)
    return _photograph(_place_card(code, short_code, background, level, rng), level, rng)


def make_empty_photo(size: tuple[int, int] = (640, 480), seed: int = 0, difficulty: str = "normal") -> np.ndarray:
    """The same camera looking at the counter with no ticket: most frames a gate sees."""
    level = _difficulty(difficulty)
    rng = _photo_rng(seed, size, difficulty, stream=2)
    background = _render_background(*size, rng).astype(np.float32)
    return _photograph(background, level, rng)


def make_ticket_frames(
    n: int,
    size: tuple[int, int] = (640, 480),
    seed: int = 0,
    difficulty: str = "normal",
) -> list[tuple[str, np.ndarray]]:
    """`n` (code, frame) pairs, each with its own code and photo, deterministic from `seed`."""
    rng = np.random.default_rng([seed, 0xC0DE])
    frames = []
    for index in range(n):
        code = random_ticket_code(rng)
        frames.append((code, make_ticket_photo(code, size, seed * 100_003 + index, difficulty)))
    return frames


def write_video(path: str | Path, frames: Sequence[np.ndarray], fps: float = 25.0) -> Path:
    """Write BGR frames (all the same size) as an MJPG .avi, which needs no GUI or codecs pack."""
    if not frames:
        raise ValueError("write_video needs at least one frame")
    path = Path(path)
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (width, height))
    if not writer.isOpened():
        raise OSError(f"OpenCV cannot write a video to {path}")
    try:
        for frame in frames:
            if frame.shape[:2] != (height, width):
                raise ValueError("all frames of a video must have the same size")
            writer.write(frame)
    finally:
        writer.release()
    return path
