"""The kiosk reads a ticket's QR from a phone's screen: the customer's phone page, rendered by Chromium at
phone size (full brightness, dimmed, and in dark mode), photographed through a screen-photo model (the
screen's sub-pixel grid, the sensor integrating it into moiré, perspective and roll, glass reflection, auto
exposure, noise, blur, JPEG), and decoded by the kiosk's own decoder to the exact code of the ticket.

bench/camera_model.py (the decode benchmark's physical camera) draws the QR itself; this test needs the
page's own pixels, so its model is the minimal one below. Photos go to test-artifacts/phone/ for review.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pytest

from gate_agent.scanner.decoders import default_decoder
from tests.browser import ROOT
from tests.helpers import as_codes
from tests.phone_support import portal_api, printed_ticket, sign_in_on_the_phone

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

ANDINA = "Exportadora Andina S.A."
SHOTS = ROOT / "test-artifacts" / "phone"
CAMERA = (1280, 720)  # the kiosk webcam's frame
#: CSS pixels of the phone (390 x 844) at two device pixels each: the screen the camera looks at.
VIEWPORT = {"width": 390, "height": 844}
DEVICE_SCALE = 2
#: Each device pixel drawn as 3 x 3 sensor-side samples: R, G, B stripes and a black row between rows.
SUBPIXELS = 3
#: The lens's blur before the sensor samples, in camera pixels: small, so the screen's grid still beats
#: against the sensor's into moiré (a blur of half a pixel would erase the grid, and the moiré with it).
LENS_PX = 0.1


@dataclass(frozen=True)
class Pose:
    """How the phone is held before the camera."""

    name: str
    screen_px: float  # the screen's width in the camera frame (sets the distance)
    roll_deg: float  # turned in its plane
    tilt: float  # the top edge nearer (>0) or farther (<0) than the bottom, as a fraction of the width
    glare: float  # the hall's light reflected on the glass, relative to screen white at full brightness


POSES = (
    Pose("straight", 300, 0.0, 0.0, 0.03),
    Pose("rolled", 330, 11.0, 0.08, 0.06),
    Pose("tilted-far", 270, -7.0, -0.15, 0.10),
)
#: Screen white relative to full brightness: a phone at full brightness, and one dimmed to save battery.
BRIGHTNESS = {"bright": 1.0, "dim": 0.22}


def screen_radiance(screenshot: np.ndarray) -> np.ndarray:
    """The light a screen showing ``screenshot`` emits, sample by sample: each pixel is three coloured stripes
    with a dark row under them (the grid a camera turns into moiré), averaging the pixel's own colour."""
    big = np.repeat(np.repeat(screenshot, SUBPIXELS, axis=0), SUBPIXELS, axis=1)
    rows = np.arange(big.shape[0]) % SUBPIXELS
    cols = np.arange(big.shape[1]) % SUBPIXELS
    mask = np.zeros(big.shape, np.uint8)
    for channel, stripe in ((2, 0), (1, 1), (0, 2)):  # BGR image: red stripe first, then green, then blue
        mask[:, cols == stripe, channel] = 1
    mask[rows == SUBPIXELS - 1] = 0
    return big * mask  # uint8: the gain that restores the mean is applied after sampling


def _screen_quad(pose: Pose, aspect: float, rng: np.random.Generator) -> np.ndarray:
    """Where the screen's corners land in the frame (top-left, top-right, bottom-right, bottom-left)."""
    width, height = pose.screen_px, pose.screen_px * aspect
    top = width * (1 + pose.tilt) / 2
    bottom = width * (1 - pose.tilt) / 2
    corners = np.array([[-top, -height / 2], [top, -height / 2], [bottom, height / 2], [-bottom, height / 2]])
    angle = np.radians(pose.roll_deg)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = np.array(CAMERA) / 2 + rng.uniform(-40, 40, 2)
    # The QR is in the screen's upper half: hold the phone a little low, as people do at a kiosk.
    return (corners @ rotation.T + centre + [0, height * 0.18]).astype(np.float32)


def photograph(screenshot: np.ndarray, pose: Pose, brightness: float, seed: int) -> np.ndarray:
    """A kiosk webcam's frame (BGR) of a phone showing ``screenshot`` at ``brightness``."""
    rng = np.random.default_rng(seed)
    emitted = screen_radiance(screenshot)
    src_h, src_w = emitted.shape[:2]
    quad = _screen_quad(pose, src_h / src_w, rng)
    emitted = cv2.GaussianBlur(emitted, (0, 0), LENS_PX * src_w / pose.screen_px)
    # The sensor integrates each pixel's area: sample at 3 x 3 points per pixel, then average them.
    sampled = (CAMERA[0] * 3, CAMERA[1] * 3)
    source = np.float32([[0, 0], [src_w, 0], [src_w, src_h], [0, src_h]])
    transform = cv2.getPerspectiveTransform(source, quad * 3)
    screen = cv2.warpPerspective(emitted, transform, sampled, flags=cv2.INTER_LINEAR)
    screen = cv2.resize(screen, CAMERA, interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    screen *= brightness * (SUBPIXELS * SUBPIXELS / (SUBPIXELS - 1))  # undo the stripes' and rows' dark share
    on_glass = cv2.resize(
        cv2.warpPerspective(np.ones((src_h // 8, src_w // 8), np.float32), transform, sampled), CAMERA
    )[:, :, None]
    # The scene: the kiosk's dim housing, the phone's black body around the glass, the hall's light on it.
    ys, xs = np.mgrid[0 : CAMERA[1], 0 : CAMERA[0]].astype(np.float32)
    hall = 0.05 + 0.05 * xs / CAMERA[0]
    spot = np.exp(-(((xs - rng.uniform(300, 980)) ** 2 + (ys - rng.uniform(150, 570)) ** 2) / (2 * 180.0**2)))
    radiance = hall[:, :, None] * (1 - on_glass) + screen + (pose.glare * (0.4 + spot))[:, :, None] * on_glass
    # Auto exposure: the frame's middle metered to a mid grey; a dim screen means more gain, so more noise.
    middle = radiance[CAMERA[1] // 4 : 3 * CAMERA[1] // 4, CAMERA[0] // 4 : 3 * CAMERA[0] // 4].mean()
    gain = min(0.42 / max(float(middle), 1e-3), 12.0)
    exposed = radiance * gain
    exposed += rng.normal(0, 0.004 * np.sqrt(gain), exposed.shape[:2])[:, :, None]  # read and shot noise
    exposed += rng.normal(0, 0.01, exposed.shape) * np.sqrt(np.clip(exposed, 0, 1))
    image = np.clip(exposed, 0, 1) ** (1 / 2.2)  # the ISP's gamma
    image = cv2.GaussianBlur(image, (0, 0), 0.7)  # lens and demosaic softness
    ok, jpeg = cv2.imencode(".jpg", (image * 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    return cv2.imdecode(jpeg, cv2.IMREAD_COLOR)


@pytest.fixture(scope="module")
def shown_ticket(live_server) -> tuple[int, str]:
    """A printed ticket of Andina's and its code, as the app's API gives it."""
    ticket_id = printed_ticket(live_server.db_url)
    body = portal_api(live_server.url, "andina", ANDINA)("GET", f"/api/v1/tickets/{ticket_id}/phone")
    assert body["status"] == "valid"
    return ticket_id, body["code"]


def phone_screenshot(chromium, live_server, ticket_id: int, scheme: str) -> tuple[np.ndarray, dict]:
    """The ticket's phone page as the phone's screen shows it (the viewport, in device pixels), and where its
    QR card is (CSS pixels)."""
    context = chromium.new_context(
        base_url=live_server.url,
        viewport=VIEWPORT,
        device_scale_factor=DEVICE_SCALE,
        is_mobile=True,
        has_touch=True,
        color_scheme=scheme,
        service_workers="block",
    )
    try:
        page = context.new_page()
        sign_in_on_the_phone(page, "andina", ANDINA)
        page.goto(f"/tickets/{ticket_id}/phone")
        page.locator("#qr svg").wait_for()
        card = page.locator("#qr").bounding_box()
        png = page.screenshot()
    finally:
        context.close()
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), card


@pytest.mark.parametrize("mode", ["bright", "dim", "dark"])
def test_the_kiosk_reads_the_qr_from_a_phone_screen(chromium, live_server, shown_ticket, mode):
    ticket_id, code = shown_ticket
    screenshot, card = phone_screenshot(chromium, live_server, ticket_id, "dark" if mode == "dark" else "light")
    SHOTS.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(SHOTS / f"scan-screen-{mode}.png"), screenshot)
    # Whatever the mode, the QR sits on white (dark mode darkens only the page around the card).
    inside_card = screenshot[int((card["y"] + 6) * DEVICE_SCALE), int((card["x"] + 6) * DEVICE_SCALE)]
    assert inside_card.min() >= 250, inside_card
    page_margin = screenshot[-4, 4]
    assert page_margin.max() < 40 if mode == "dark" else page_margin.min() >= 250, page_margin
    decoder = default_decoder()
    read = {}
    for index, pose in enumerate(POSES):
        frame = photograph(screenshot, pose, BRIGHTNESS.get(mode, 1.0), seed=index)
        cv2.imwrite(str(SHOTS / f"scan-photo-{mode}-{pose.name}.jpg"), frame)
        read[pose.name] = as_codes(decoder.decode(frame))
    assert read == {pose.name: [code] for pose in POSES}
