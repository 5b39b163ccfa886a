"""The gate conditions the decode benchmark photographs, each at several severities.

Every frame starts from an ordinary kiosk shot (:func:`ordinary_shot`: a ticket held 12-25 cm from a 60-degree
webcam, a little tilted and turned, a bright or dim hall, a steady-ish hand, a decent JPEG), then one condition
changes what it is about. Severities are physical settings (degrees, mm, light levels, px of blur at 640x480),
not decoder-tuned knobs; the same seed gives the same frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from bench.camera_model import Shot

SIZES = ((640, 480), (1280, 720))

Rng = np.random.Generator


def ordinary_shot(size: tuple[int, int], rng: Rng) -> Shot:
    """A ticket held up to the kiosk camera on an ordinary day."""
    scale = size[0] / 640  # the same lens at 1280 px: twice the pixels per mm at the same distance
    roll = rng.uniform(-25, 25) if rng.random() < 0.85 else rng.uniform(-180, 180)
    return Shot(
        size=size,
        code_px=float(rng.uniform(90, 180) * scale),
        tilt_deg=float(rng.uniform(0, 15)),
        tilt_axis_deg=float(rng.uniform(0, 360)),
        roll_deg=float(roll),
        light=float(np.exp(rng.uniform(np.log(0.3), np.log(2.0)))),
        light_gradient=float(rng.uniform(0, 0.4)),
        warm=float(rng.uniform(-1, 1)),
        speed_px_s=float(rng.uniform(0, 60) * scale),
        motion_angle_deg=float(rng.uniform(0, 180)),
        defocus_px=float(rng.uniform(0, 0.8) * scale),
        jpeg_quality=int(rng.integers(70, 93)),
    )


def _scaled(shot: Shot) -> float:
    return shot.size[0] / 640


def _pick(values: tuple[float, ...], severity: int, rng: Rng, jitter: float = 0.1) -> float:
    """The severity's value, jittered by ``jitter`` of it so no two frames share an exact setting."""
    return float(values[severity - 1] * rng.uniform(1 - jitter, 1 + jitter))


def _tilt(shot: Shot, severity: int, rng: Rng) -> Shot:
    return replace(shot, tilt_deg=_pick((35, 50, 62), severity, rng, 0.05))


def _distance(shot: Shot, severity: int, rng: Rng) -> Shot:
    # The reference QR's side in px, whatever the resolution: down to ~40 px.
    return replace(shot, code_px=_pick((70, 55, 40), severity, rng, 0.05))


def _defocus(shot: Shot, severity: int, rng: Rng) -> Shot:
    return replace(shot, defocus_px=_pick((1.5, 2.5, 3.5), severity, rng) * _scaled(shot))


def _motion(shot: Shot, severity: int, rng: Rng) -> Shot:
    return replace(shot, speed_px_s=_pick((300, 600, 1000), severity, rng) * _scaled(shot), light=1.0)


def _low_light(shot: Shot, severity: int, rng: Rng) -> Shot:
    return replace(shot, light=_pick((0.08, 0.03, 0.012), severity, rng))


def _night(shot: Shot, severity: int, rng: Rng) -> Shot:
    """A dark lane: the camera drops to 15 fps to gather light, the gain is up, and the driver's hand moves."""
    return replace(
        shot,
        light=_pick((0.03, 0.015, 0.008), severity, rng),
        frame_time_s=1 / 15,
        speed_px_s=_pick((30, 60, 100), severity, rng) * _scaled(shot),
        warm=float(rng.uniform(0.5, 1.0)),  # sodium and tungsten lamps
    )


def _glare(shot: Shot, severity: int, rng: Rng) -> Shot:
    return replace(
        shot, glare=_pick((1.0, 2.0, 4.0), severity, rng), glare_radius=_pick((0.15, 0.22, 0.3), severity, rng)
    )


def _jpeg(shot: Shot, severity: int, rng: Rng) -> Shot:
    return replace(shot, jpeg_quality=int(_pick((35, 20, 10), severity, rng)))


def _crease(shot: Shot, severity: int, rng: Rng) -> Shot:
    return replace(shot, creases=severity, crease_mm=_pick((0.15, 0.3, 0.5), severity, rng))


def _thumb(shot: Shot, severity: int, rng: Rng) -> Shot:
    """A thumb on the code's edge: touching it; two modules in, between the finder patterns; three modules in,
    over a finder pattern."""
    reach = (0.5, 2.0, 3.0)[severity - 1]
    return replace(shot, thumb=reach * float(rng.uniform(0.8, 1.2)), thumb_on_finder=severity == 3)


def _faded(shot: Shot, severity: int, rng: Rng) -> Shot:
    return replace(shot, ink=_pick((0.35, 0.5, 0.62), severity, rng, 0.03), toner_gaps=(0.1, 0.2, 0.35)[severity - 1])


def _rotation(shot: Shot, severity: int, rng: Rng) -> Shot:
    """Upside down or sideways; then diagonal; then diagonal with the corner that has no finder pattern out of
    the frame."""
    quarter = 90 * int(rng.integers(0, 4))
    if severity == 1:
        return replace(shot, roll_deg=quarter + float(rng.uniform(-15, 15)))
    roll = quarter + 45 + float(rng.uniform(-4, 4))
    return replace(shot, roll_deg=roll, corner_out_modules=0.0 if severity == 2 else float(rng.uniform(1.5, 3)))


def _phone(mode: str, nits: tuple[float, ...]) -> Callable[[Shot, int, Rng], Shot]:
    def condition(shot: Shot, severity: int, rng: Rng) -> Shot:
        return replace(shot, screen=mode, screen_nits=_pick(nits, severity, rng))

    return condition


def _phone_bright(shot: Shot, severity: int, rng: Rng) -> Shot:
    """A phone at full brightness: held straight; tilted; with a lamp reflected on its glass."""
    shot = replace(shot, screen="light", screen_nits=float(rng.uniform(3, 5)))
    if severity == 2:
        return replace(shot, tilt_deg=float(rng.uniform(30, 45)))
    if severity == 3:
        return replace(shot, glare=float(rng.uniform(1.5, 3)), glare_radius=float(rng.uniform(0.12, 0.2)))
    return shot


def _moire(shot: Shot, severity: int, rng: Rng) -> Shot:
    """A phone held close: its pixel grid comes near the camera's, and the sensor integrates less of each pixel."""
    return replace(
        shot,
        screen="light",
        screen_nits=float(rng.uniform(2, 4)),
        supersample=(3, 2, 1)[severity - 1],
        screen_lens_px=(0.35, 0.2, 0.0)[severity - 1],
        code_px=float(rng.uniform(150, 220) * _scaled(shot)),
    )


def _clean(shot: Shot, severity: int, rng: Rng) -> Shot:
    return shot


CONDITIONS: dict[str, tuple[int, Callable[[Shot, int, Rng], Shot]]] = {
    "clean": (1, _clean),
    "tilt": (3, _tilt),
    "distance": (3, _distance),
    "defocus": (3, _defocus),
    "motion": (3, _motion),
    "low light": (3, _low_light),
    "night": (3, _night),
    "glare": (3, _glare),
    "jpeg": (3, _jpeg),
    "crease": (3, _crease),
    "thumb": (3, _thumb),
    "faded": (3, _faded),
    "rotation": (3, _rotation),
    "phone bright": (3, _phone_bright),
    "phone dim": (3, _phone("light", (0.6, 0.3, 0.15))),
    "phone dark": (3, _phone("dark", (1.5, 0.8, 0.4))),
    "phone moire": (3, _moire),
}
"""condition → (how many severities, how it changes an ordinary shot)."""


def cells() -> list[tuple[str, int, tuple[int, int]]]:
    """Every (condition, severity, frame size) the benchmark fills, in a fixed order."""
    return [
        (name, severity, size)
        for name, (levels, _) in CONDITIONS.items()
        for severity in range(1, levels + 1)
        for size in SIZES
    ]


def draw_shot(condition: str, severity: int, size: tuple[int, int], seed: int) -> Shot:
    """The shot of one frame: an ordinary shot changed by the condition at its severity."""
    levels, change = CONDITIONS[condition]
    if not 1 <= severity <= levels:
        raise ValueError(f"{condition!r} has severities 1..{levels}, not {severity}")
    rng = np.random.default_rng([seed, 0x5407])
    return change(ordinary_shot(size, rng), severity, rng)
