"""The lane screen in Chromium, on a 7-inch 800x480 panel and on a 1080p screen at once, fed by a real
agent process and a real server: the idle prompt, sizes read from a truck cab, offline unmistakable,
counters that follow the outbox without a scan, the hold time and the sound, and the protocol page
(docs/lane-screen.md) checked against the messages the screen really received."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest

from gate_agent.config import AgentConfigError, load_agent_config
from gate_core.codes import SigningKey, issue_code
from gate_core.reasons import advice_text
from server.tickets.pdf import QR_STYLE
from tests.scanner_fixtures import glare, on_paper
from tests.stack import AgentProcess, ServerProcess
from tests.test_browser_tickets_kiosk import create_kiosk

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parent.parent
PANEL = (800, 480)
FULL_HD = (1920, 1080)
#: Records every tone the page starts, as the Web Audio API is asked for it (the tone still plays).
RECORD_TONES = """
window.tones = [];
const realStart = OscillatorNode.prototype.start;
OscillatorNode.prototype.start = function (...args) {
  window.tones.push([this.type, this.frequency.value]);
  return realStart.apply(this, args);
};
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[ServerProcess]:
    """The real server with its demo data; a test may stop and start it on the same port."""
    proc = ServerProcess(tmp_path_factory.mktemp("lane") / "server").start()
    yield proc
    proc.stop()


@pytest.fixture
def lane_agent(chromium, server, tmp_path):
    """Factory: a kiosk created by the supervisor in the portal, its agent enrolled and running."""
    agents: list[AgentProcess] = []

    def start(name: str, **settings) -> AgentProcess:
        context = chromium.new_context(base_url=server.url)
        try:
            code = create_kiosk(context.new_page(), name)
        finally:
            context.close()
        agent = AgentProcess(server.url, tmp_path / name, **settings)
        assert agent.enrol(code).returncode == 0
        agents.append(agent.start())
        return agent

    yield start
    for agent in agents:
        agent.stop()


@pytest.fixture
def screens(chromium):
    """Factory: the lane screen of an agent in a browser window of a given size, with what it received."""
    contexts = []

    def open_screen(agent: AgentProcess, size: tuple[int, int]):
        context = chromium.new_context(viewport={"width": size[0], "height": size[1]})
        context.set_default_timeout(15_000)
        context.add_init_script(RECORD_TONES)
        contexts.append(context)
        page = context.new_page()
        page.messages = []
        page.on("websocket", lambda ws: ws.on("framereceived", lambda frame: page.messages.append(json.loads(frame))))
        page.goto(f"http://127.0.0.1:{agent.ui_port}/")
        return page

    yield open_screen
    for context in contexts:
        context.close()


def printed_codes(server: ServerProcess, count: int) -> list[str]:
    """Short codes of printed tickets nobody has used (what a driver hands over at the gate)."""
    rows = server.db_rows(
        "SELECT short_code FROM tickets WHERE printed_at IS NOT NULL AND used_at IS NULL AND deleted_at IS NULL "
        "ORDER BY id DESC LIMIT ?",
        (count,),
    )
    assert len(rows) == count, "the demo data has printed tickets"
    return [row[0] for row in rows]


def type_code(screen, code: str) -> None:
    screen.fill("#code", code)
    screen.keyboard.press("Enter")


def font_px(screen, selector: str) -> float:
    return screen.eval_on_selector(selector, "el => parseFloat(getComputedStyle(el).fontSize)")


def smallest_font_px(screen, selector: str) -> float:
    sizes = "els => els.map(e => parseFloat(getComputedStyle(e).fontSize))"
    return min(screen.eval_on_selector_all(selector, sizes))


def assert_verdict_fits(screen, size: tuple[int, int]) -> None:
    """Title, reason and details are whole on screen, above the manual entry (nothing cut or hidden)."""
    verdict = screen.locator("#verdict").bounding_box()
    assert verdict["width"] >= size[0] * 0.9 and verdict["height"] >= size[1] / 2  # the verdict fills the screen
    form_top = screen.locator("#manual").bounding_box()["y"]
    assert form_top + screen.locator("#manual").bounding_box()["height"] <= size[1] + 1
    for part in ("#verdict-title", "#verdict-reason", "#verdict-details"):
        box = screen.locator(part).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= size[0], part
        assert box["y"] >= 0 and box["y"] + box["height"] <= form_top + 1, part


#: The widths of the frame round the whole screen (the body's border), top, right, bottom, left.
FRAME_WIDTHS = """
(() => { const style = getComputedStyle(document.body);
         return ["Top", "Right", "Bottom", "Left"].map((side) => parseFloat(style["border" + side + "Width"])); })()
"""


def uncovered(screen, selector: str) -> bool:
    """Whether the element is what the screen shows at its centre (on screen, nothing drawn over it)."""
    return screen.eval_on_selector(
        selector,
        """el => { const r = el.getBoundingClientRect();
                   const top = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
                   return top === el || el.contains(top); }""",
    )


def documented_fields() -> dict[str, set[str]]:
    """Message type → the fields docs/lane-screen.md lists for it (the tables under "### `type`")."""
    text = (ROOT / "docs" / "lane-screen.md").read_text()
    fields: dict[str, set[str]] = {}
    for section in re.split(r"^### ", text, flags=re.M)[1:]:
        kind = re.match(r"`(\w+)`", section)
        if kind:
            fields[kind[1]] = set(re.findall(r"^\| `(\w+)` \|", section, flags=re.M))
    return fields


def test_idle_prompt_then_a_verdict_read_from_a_cab_at_800x480_and_1080p(lane_agent, screens, server, tmp_path):
    agent = lane_agent("Carril-1")
    code = printed_codes(server, 1)[0]
    panel, full_hd = screens(agent, PANEL), screens(agent, FULL_HD)
    for screen, size in ((panel, PANEL), (full_hd, FULL_HD)):
        screen.wait_for_selector("#online[data-online='1']")
        assert screen.locator("#verdict").get_attribute("data-state") == "idle"
        assert screen.locator("#verdict-title").inner_text() == "Presente su ticket"
        assert screen.locator("#offline-banner").is_hidden()
        screen.screenshot(path=tmp_path / f"idle-{size[0]}x{size[1]}.png")

    type_code(panel, code)
    for screen in (panel, full_hd):  # every screen of the lane shows the verdict
        screen.wait_for_selector("#verdict[data-state='accepted']")
        assert screen.locator("#verdict-title").inner_text() == "ACEPTADO"
        assert screen.locator("#verdict-mode").is_hidden()  # the server decided: no offline mark
        assert screen.locator("#verdict-details dd").count() >= 3  # ticket, company, itinerary...
    panel.screenshot(path=tmp_path / "accepted-800x480.png")
    full_hd.screenshot(path=tmp_path / "accepted-1920x1080.png")
    scan_id = panel.locator("#verdict").get_attribute("data-scan-id")
    assert server.db_rows("SELECT kiosk_id IS NOT NULL FROM scans WHERE scan_id = ?", (scan_id,)) == [(1,)]

    type_code(full_hd, code)  # the same ticket again: refused, with where and when it was used
    for screen, size in ((panel, PANEL), (full_hd, FULL_HD)):
        screen.wait_for_selector("#verdict[data-reason='already_used']")
        assert screen.locator("#verdict-reason").inner_text() == "Ticket ya usado"
        assert "Carril-1" in screen.locator("#verdict-details").inner_text()
        assert_verdict_fits(screen, size)
        screen.screenshot(path=tmp_path / f"refused-{size[0]}x{size[1]}.png")
    assert font_px(panel, "#verdict-reason") >= 40
    assert smallest_font_px(panel, "#verdict-details dt, #verdict-details dd") >= 24
    assert font_px(panel, "#verdict-title") > font_px(panel, "#verdict-reason")
    # The big screen uses its room: everything larger than on the panel.
    for part in ("#verdict-title", "#verdict-reason", "#verdict-details dd"):
        assert font_px(full_hd, part) >= 1.4 * font_px(panel, part), part
    assert panel.evaluate("window.tones") == []  # sound is off unless the kiosk's settings turn it on

    (tmp_path / "messages.json").write_text(json.dumps(panel.messages, ensure_ascii=False, indent=1))
    documented = documented_fields()
    for message in panel.messages + full_hd.messages:
        assert set(message) - {"type"} <= documented[message["type"]], message
    for kind in ("status", "verdict"):
        sent = set().union(*(set(m) for m in panel.messages if m["type"] == kind)) - {"type"}
        assert documented[kind] == sent, kind


def test_offline_fills_the_screen_and_the_counters_follow_the_outbox_without_a_scan(
    lane_agent, screens, server, tmp_path
):
    # Neither the scheduled pull nor the scheduled upload comes during the test: only the agent's
    # return to the server drains the outbox, so the screen must learn the new count on its own.
    agent = lane_agent("Carril-2", sync_interval_s=3600, upload_interval_s=600)
    code = printed_codes(server, 1)[0]
    panel, full_hd = screens(agent, PANEL), screens(agent, FULL_HD)
    for screen in (panel, full_hd):
        screen.wait_for_selector("#online[data-online='1']")
        assert not screen.evaluate("document.body.classList.contains('offline')")
    tickets = int(panel.locator("#tickets").inner_text())
    assert tickets > 0

    server.stop()
    try:
        for screen, size in ((panel, PANEL), (full_hd, FULL_HD)):
            screen.wait_for_selector("#offline-banner:visible")
            assert screen.locator("#offline-banner").inner_text() == "SIN CONEXIÓN · el kiosco decide solo"
            frame = screen.evaluate(FRAME_WIDTHS)
            assert min(frame) >= 10  # a thick frame round the whole screen, and a banner across it
            banner = screen.locator("#offline-banner").bounding_box()
            assert banner["width"] >= size[0] - frame[1] - frame[3] - 1 and font_px(screen, "#offline-banner") >= 24

        type_code(panel, code)
        for screen, size in ((panel, PANEL), (full_hd, FULL_HD)):
            screen.wait_for_selector("#verdict[data-state='accepted'][data-mode='offline']")
            assert screen.locator("#verdict-title").inner_text() == "ACEPTADO"
            assert screen.locator("#verdict-mode").inner_text() == "SIN CONEXIÓN · decidido en el kiosco"
            assert font_px(screen, "#verdict-mode") >= 24
            assert_verdict_fits(screen, size)
            screen.wait_for_function("document.getElementById('pending').textContent === '1'")
            assert all(uncovered(screen, part) for part in ("#pending", "#tickets", "#code"))  # inside the frame
            screen.screenshot(path=tmp_path / f"offline-{size[0]}x{size[1]}.png")
        type_code(full_hd, code)  # the same ticket again: the kiosk alone knows it was just used here
        for screen, size in ((panel, PANEL), (full_hd, FULL_HD)):
            screen.wait_for_selector("#verdict[data-reason='already_used'][data-mode='offline']")
            assert screen.locator("#verdict-mode").is_visible()
            assert "Carril-2" in screen.locator("#verdict-details").inner_text()  # used here, a moment ago
            assert_verdict_fits(screen, size)
            screen.wait_for_function("document.getElementById('pending').textContent === '2'")
            screen.screenshot(path=tmp_path / f"offline-refused-{size[0]}x{size[1]}.png")
    finally:
        server.start()

    # No scan from here on: the agent reconnects, uploads the scan, and the screens follow.
    for screen in (panel, full_hd):
        screen.wait_for_function("document.getElementById('pending').textContent === '0'", timeout=45_000)
        screen.wait_for_selector("#offline-banner", state="hidden")
        assert not screen.evaluate("document.body.classList.contains('offline')")
    assert int(panel.locator("#tickets").inner_text()) == tickets
    assert [row[3] is not None for row in agent.outbox()] == [True, True]


def test_hold_time_and_a_sound_per_verdict_come_from_the_kiosk_settings(lane_agent, screens, server):
    agent = lane_agent("Carril-3", verdict_hold_s=1.5, verdict_sound=True)
    code = printed_codes(server, 1)[0]
    panel = screens(agent, PANEL)
    panel.wait_for_selector("#online[data-online='1']")

    type_code(panel, code)
    panel.wait_for_selector("#verdict[data-state='accepted']")
    # Back to the prompt after the configured 1.5 s, not the default 6 s.
    panel.wait_for_selector("#verdict[data-state='idle']", timeout=4_000)
    assert panel.locator("#verdict-title").inner_text() == "Presente su ticket"
    accepted_tones = panel.evaluate("window.tones")

    type_code(panel, code)
    panel.wait_for_selector("#verdict[data-state='refused']")
    refused_tones = panel.evaluate("window.tones")[len(accepted_tones) :]
    assert accepted_tones and refused_tones
    assert set(map(tuple, accepted_tones)).isdisjoint(map(tuple, refused_tones))  # each verdict sounds its own


def test_a_ticket_the_camera_cannot_read_gets_advice_until_a_verdict_takes_its_place(
    lane_agent, screens, server, tmp_path
):
    """The lane's camera sees a ticket under a lamp whose reflection burns out too much of its code: the screen
    asks the driver to tilt it, under the prompt, big enough to read from the cab; a verdict covers it."""
    picture = tmp_path / "glare.png"
    unreadable = issue_code(SigningKey.from_private_bytes(1, bytes(range(32))), 5, 1)  # never read: any code
    cv2.imwrite(str(picture), glare(on_paper(unreadable, style=QR_STYLE), (330, 230), radius=120))
    agent = lane_agent("Carril-4", scanners=[{"type": "camera", "source": str(picture), "loop": True}])
    panel = screens(agent, PANEL)
    # The camera's decoding shares a busy test box (its budget is wall-clock time there): give it time to locate.
    panel.wait_for_selector("#verdict[data-advice='glare']", timeout=60_000)
    assert panel.locator("#verdict").get_attribute("data-state") == "idle"
    assert panel.locator("#verdict-title").inner_text() == "Presente su ticket"
    assert panel.locator("#verdict-reason").inner_text() == advice_text("glare", "es")
    assert uncovered(panel, "#verdict-reason") and font_px(panel, "#verdict-reason") >= 40
    panel.screenshot(path=tmp_path / "advice-800x480.png")

    type_code(panel, printed_codes(server, 1)[0])  # the gate staff type the short code
    panel.wait_for_selector("#verdict[data-state='accepted']")
    assert panel.locator("#verdict").get_attribute("data-advice") is None
    assert panel.locator("#verdict-title").inner_text() == "ACEPTADO"
    panel.wait_for_timeout(2_500)  # advice keeps coming while the camera sees the code: the verdict stays
    assert panel.locator("#verdict").get_attribute("data-state") == "accepted"
    assert panel.locator("#verdict-reason").inner_text() != advice_text("glare", "es")

    advice = [message for message in panel.messages if message["type"] == "advice"]
    assert advice and all(set(message) - {"type"} == documented_fields()["advice"] for message in advice)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PORTGATE_AGENT_VERDICT_HOLD_S", "0", "verdict_hold_s: must be between 1 and 300 seconds"),
        ("PORTGATE_AGENT_VERDICT_HOLD_S", "soon", "verdict_hold_s: expected a number"),
        ("PORTGATE_AGENT_VERDICT_SOUND", "loud", "verdict_sound: expected true or false"),
    ],
)
def test_bad_lane_screen_settings_stop_the_agent_naming_the_key(variable, value, message):
    with pytest.raises(AgentConfigError, match=re.escape(message)):
        load_agent_config(environ={variable: value})
