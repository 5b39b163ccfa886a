"""In Chromium, the licence administration's policy form offers serials as the admin types their number."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from server.demo import DEMO_PASSWORD
from tests.browser import answer_human_check
from tests.helpdesk_support import PACIFICO_SERIAL

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


def test_typing_the_start_of_a_serial_offers_it_and_the_policy_is_saved_on_it(new_page):
    page = new_page()
    page.goto("/login")
    page.select_option("#f-language", "en")
    page.fill("#f-login", "admin")
    page.fill("#f-password", DEMO_PASSWORD)
    answer_human_check(page)
    page.click("#submit")
    page.wait_for_load_state()
    page.goto("/admin/licences")
    serial = page.locator("#f-policy-serial")
    expect(serial).to_have_attribute("list", "serial-choices")
    serial.press_sequentially(PACIFICO_SERIAL[:8].lower())
    offered = page.locator("#serial-choices option")
    expect(offered).to_have_count(1)
    assert offered.get_attribute("value") == PACIFICO_SERIAL
    serial.fill(offered.get_attribute("value"))
    page.fill("#f-policy-number", "POL-BROWSER-1")
    page.fill("#f-policy-description", "Soporte anual")
    page.fill("#f-policy-registered_on", "2026-01-01")
    page.fill("#f-policy-valid_until", "2027-01-01")
    page.click("#save-policy")
    expect(page.locator(".alert-success")).to_have_text("Policy saved.")
