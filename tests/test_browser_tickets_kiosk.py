"""In Chromium: a customer generates, prints and deletes tickets; the printed PDF, read like a camera
would, yields a code the server accepts; the kiosk screen shows a scan's verdict."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request

import cv2
import pytest
from pyzbar import pyzbar

from gate_agent.scanner.manual import MAX_CODE_LENGTH
from tests.browser import answer_human_check
from tests.dbaccess import db_value
from tests.helpers import as_codes
from tests.stack import AgentProcess

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


def log_in(page, user: str) -> None:
    page.goto("/login")
    page.fill("#f-login", user)
    page.fill("#f-password", "demo2026pass")
    answer_human_check(page)
    page.click("#submit")


def create_kiosk(page, name: str) -> str:
    """As the gate supervisor: create a kiosk in the portal and read its one-time enrolment code."""
    log_in(page, "supervisor")
    page.goto("/gate/kiosks")
    page.fill("#f-name", name)
    page.click("form[action='/gate/kiosks'] button[type=submit]")
    return page.locator("#enrol-code").inner_text().strip()


def api(url: str, path: str, body: dict, token: str | None = None) -> dict:
    request = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())


def balance(page) -> int:
    page.goto("/tickets")
    return int(page.locator("#balance-available").inner_text())


def test_generate_print_scan_the_pdf_then_delete(new_page, live_server, tmp_path):
    page = new_page()
    log_in(page, "pacifico")
    before = balance(page)
    page.fill("#f-quantity", "2")
    page.click("#generate")
    option = page.locator("#f-itinerary_id option", has_text="MSC Guayaquil").get_attribute("value")
    page.select_option("#f-itinerary_id", option)
    page.locator("input[name=services]").first.check()
    page.click("#process")
    assert page.locator("#transaction-no").inner_text().startswith("TX")
    assert balance(page) == before - 2

    page.click("a.button-link >> nth=0")
    rows = page.locator("tr[data-printed='0']")
    assert rows.count() >= 2
    first_id = rows.nth(0).get_attribute("data-ticket")
    assert re.search(r"••••• ••••• ••••• •\d{4}", rows.nth(0).inner_text())  # masked as it prints
    with page.expect_download() as download:
        rows.nth(0).locator("button.print").click()
    pdf = tmp_path / "ticket.pdf"
    download.value.save_as(pdf)
    subprocess.run(["pdftoppm", "-r", "150", "-gray", "-png", str(pdf), str(tmp_path / "page")], check=True)
    image = cv2.imread(str(next(tmp_path.glob("page*.png"))), cv2.IMREAD_GRAYSCALE)
    codes = as_codes([symbol.data.decode() for symbol in pyzbar.decode(image)])
    full_code = next(code for code in codes if code.startswith("PG1"))
    page.reload()
    assert page.locator(f"tr[data-ticket='{first_id}']").get_attribute("data-printed") == "1"

    kiosk_page = new_page()
    enrol_code = create_kiosk(kiosk_page, "Garita-Browser")
    token = api(live_server.url, "/api/v1/gate/enrol", {"enrol_code": enrol_code, "fingerprint": "t"})["token"]
    verdict = api(
        live_server.url,
        "/api/v1/gate/redeem",
        {"scan_id": "browser-scan-0001", "code": full_code, "scanned_at": "2026-11-24T10:00:00+00:00"},
        token,
    )
    assert verdict["accepted"] and verdict["reason"] == "accepted" and verdict["ticket_id"] == int(first_id)

    # Delete the other, unused ticket: asked to confirm, then the balance is back by one.
    after_generation = balance(page)
    page.goto(page.url)  # the tickets page
    page.click("a.button-link >> nth=0")
    unused = page.locator("tr[data-printed='0'] a.delete").first
    unused.click()
    page.click("#confirm-delete")
    assert page.locator(".alert-success").count() == 1
    assert balance(page) == after_generation + 1
    # The used ticket offers neither print nor delete any more.
    page.click("a.button-link >> nth=0")
    used_row = page.locator(f"tr[data-ticket='{first_id}']")
    assert used_row.locator("button.print").count() == 0 and used_row.locator("a.delete").count() == 0


def test_kiosk_screen_shows_the_verdict_of_a_typed_code(new_page, live_server, chromium, tmp_path):
    supervisor = new_page()
    enrol_code = create_kiosk(supervisor, "Garita-Pantalla")
    agent = AgentProcess(live_server.url, tmp_path / "agent")
    assert agent.enrol(enrol_code).returncode == 0
    agent.start()
    try:
        short = printed_short_code(live_server.db_url)
        assert short is not None, "the demo data has printed tickets"
        # What the gate staff types (or a keyboard-wedge scanner types into the focused field), on
        # the small kiosk display and on a full-HD one: a printed ticket, the same ticket again, a
        # code nobody issued, and text that is no code at all.
        typed = [
            (800, 480, short, "accepted", "ACEPTADO"),
            (1920, 1080, short, "refused", "Ticket ya usado"),
            (1920, 1080, "12345678901234567890", "refused", "Ticket no encontrado"),
        ]
        for width, height, code, state, text in typed:
            context = chromium.new_context(viewport={"width": width, "height": height})
            screen = context.new_page()
            screen.goto(f"http://127.0.0.1:{agent.ui_port}/")
            screen.wait_for_selector("#online[data-online='1']", timeout=15_000)
            screen.keyboard.type(code)
            screen.keyboard.press("Enter")
            verdict = screen.locator("#verdict")
            screen.wait_for_selector(f"#verdict[data-state='{state}']")
            shown = screen.locator("#verdict-title" if state == "accepted" else "#verdict-reason").inner_text()
            assert shown == text
            box = verdict.bounding_box()
            title = screen.locator("#verdict-title").bounding_box()
            assert title["y"] + title["height"] <= height and box["width"] >= width * 0.9
            if code != short:  # longer than any code: the screen says so and decides nothing
                screen.fill("#code", "7" * (MAX_CODE_LENGTH + 1))
                screen.keyboard.press("Enter")
                screen.wait_for_function("document.getElementById('input-error').textContent.length > 0")
                assert screen.locator("#input-error").inner_text() == "El código es demasiado largo."
                assert screen.locator("#verdict-reason").inner_text() == text
            context.close()
    finally:
        agent.stop()


def printed_short_code(db_url: str) -> str | None:
    return db_value(
        db_url,
        "SELECT short_code FROM tickets WHERE printed_at IS NOT NULL AND used_at IS NULL "
        "AND deleted_at IS NULL ORDER BY id DESC LIMIT 1",
    )
