"""What a person holding a phone would notice on a portal page, measured in the page itself.

``layout_problems(page)`` returns a list of sentences, empty when the page is fine: it scrolls
sideways, a button or link is cut off by the screen or by its scroll box, a tap target is lower
than 44 px or narrower, the header eats the screen, a card lost a column's name. Screenshots go to
``test-artifacts/phone/<width>/<name>.png`` (git-ignored) so a person can look at every screen.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "phone"

#: An iPhone-sized touch phone and a common Android size, as Chromium's device emulation takes them.
PHONES = {
    "iphone-390": {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 3,
        "is_mobile": True,
        "has_touch": True,
        "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
    },
    "android-360": {
        "viewport": {"width": 360, "height": 800},
        "device_scale_factor": 3,
        "is_mobile": True,
        "has_touch": True,
        "user_agent": "Mozilla/5.0 (Linux; Android 14; SM-A546B) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36",
    },
}
MIN_TAP = 44
MAX_HEADER = 120

#: The measuring function, run in the page (see its comments for what counts as a tap target).
MEASURE = (Path(__file__).parent / "phone_layout.js").read_text()


def layout_problems(page) -> list[str]:
    """What is wrong with the page as shown now, in sentences (none when it is fine)."""
    return page.evaluate(MEASURE, {"MIN_TAP": MIN_TAP, "MAX_HEADER": MAX_HEADER})


def screenshot(page, device: str, name: str) -> Path:
    """Keep the whole page as seen on ``device`` for review, under test-artifacts/phone/<width>/."""
    width = page.viewport_size["width"]
    path = ARTIFACTS / str(width) / f"{device}-{re.sub(r'[^a-z0-9-]+', '-', name.lower())}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path
