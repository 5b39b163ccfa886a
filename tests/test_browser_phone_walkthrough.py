"""A customer's day on a phone, in Chromium's device emulation (a 390 x 844 iPhone, a 360 x 800 Android).

Registration with the code texted through the HTTP SMS sender (to a stand-in gateway the test runs),
sign-in, a support ticket opened with a camera photo and answered with another, the licences with
their machines, the policies, and a gate ticket shown full-screen for the kiosk. Every screen is
tapped as a finger does, checked for what a person holding the phone would notice (sideways
scrolling, cut-off or too small buttons: ``tests.phone_layout``) and kept as a screenshot under
``test-artifacts/phone/walkthrough/`` for review.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.app_support import camera_jpeg
from tests.browser import ROOT, answer_human_check, demo_server
from tests.helpdesk_support import png_bytes
from tests.phone_layout import PHONES, layout_problems
from tests.phone_support import printed_ticket
from tests.sms_gateway import ANDINA, COMPANY_PHONE, SmsGateway

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

SHOTS = ROOT / "test-artifacts" / "phone" / "walkthrough"
PASSWORD = "Andina2026clave"
#: Each phone registers its own account: another of Andina's e-mails on file, another user name.
REGISTRANTS = {
    "iphone-390": {"email_index": 1, "masked": "j**e@a****a.example", "username": "jefe.iphone", "name": "Jorge Jefe"},
    "android-360": {
        "email_index": 0,
        "masked": "l*******a@a****a.example",
        "username": "logistica.android",
        "name": "Lina Logística",
    },
}


@pytest.fixture(scope="module")
def sms_gateway():
    running = SmsGateway().start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def phone_server(tmp_path_factory, browser_smtp, sms_gateway):
    """The demo server texting through the HTTP SMS sender to the stand-in gateway."""
    data_dir = tmp_path_factory.mktemp("walkthrough") / "data"
    with demo_server(
        data_dir, browser_smtp.port, PORTGATE_SMS__BACKEND="http", PORTGATE_SMS__URL=sms_gateway.url
    ) as server:
        yield server


class Walk:
    """Numbered screens of one phone's walk: each is checked as a person would look at it, then kept."""

    def __init__(self, page, device: str) -> None:
        self.page = page
        self.device = device
        self.step = 0

    def screen(self, name: str) -> None:
        self.step += 1
        self.page.wait_for_load_state("load")
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{self.device}-{self.step:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True, timeout=20_000)
        assert layout_problems(self.page) == [], f"{name} on {self.device} (see {path})"

    def menu(self, href: str) -> None:
        """Open the hamburger menu and tap the entry for ``href``."""
        self.page.locator("#menu-button").tap()
        self.page.locator(f'#site-menu a[href="{href}"]').tap()
        expect(self.page).to_have_url(re.compile(re.escape(href) + r"$"))


def register_with_the_texted_code(walk: Walk, gateway: SmsGateway, who: dict) -> None:
    page = walk.page
    page.goto("/login")
    walk.screen("login")
    page.locator('a[href="/register/customer"]').tap()
    page.locator("#register-by-phone").tap()
    expect(page).to_have_url(re.compile(r"/register/phone$"))
    page.fill("#f-tax_id", ANDINA)
    walk.screen("register-rfc")
    page.locator("#submit").tap()

    page.locator("label.profile-option", has_text=who["masked"]).tap()
    page.fill("#f-phone", COMPANY_PHONE)
    page.fill("#f-phone_confirm", COMPANY_PHONE)
    answer_human_check(page)
    walk.screen("register-email-and-phone")
    texts_before = len(gateway.texts_to(COMPANY_PHONE))
    page.locator("#submit").tap()

    expect(page).to_have_url(re.compile(r"/register/phone/code$"))
    expect(page.locator(".alert-success")).to_contain_text("código de 4 dígitos")
    assert len(gateway.texts_to(COMPANY_PHONE)) == texts_before + 1
    code = gateway.code_for(COMPANY_PHONE)
    page.fill("#f-code", code)
    page.fill("#f-full_name", who["name"])
    page.fill("#f-username", who["username"])
    page.fill("#f-password", PASSWORD)
    page.fill("#f-password_confirm", PASSWORD)
    walk.screen("register-code")
    page.locator("#submit").tap()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.locator(".alert-success")).to_contain_text("Su cuenta está lista")


def sign_in(walk: Walk, who: dict) -> None:
    page = walk.page
    page.fill("#f-login", who["username"])
    page.fill("#f-password", PASSWORD)
    answer_human_check(page)
    page.locator("#submit").tap()
    expect(page).to_have_url(re.compile(r"/home$"))  # one profile: straight in
    walk.screen("home")


def open_and_answer_a_support_ticket(walk: Walk, tmp_path: Path, who: dict) -> None:
    page = walk.page
    photo = tmp_path / "IMG_20260112_101500.jpg"
    photo.write_bytes(camera_jpeg())
    gallery = tmp_path / "Screenshot_20260112.png"
    gallery.write_bytes(png_bytes(32, 32))

    walk.menu("/helpdesk/tickets")
    walk.screen("tickets")
    page.locator('a[href="/helpdesk/tickets/new"]').first.tap()
    page.fill("#f-q", "Mobile")
    page.locator("form.inline-form button[type=submit]").tap()
    expect(page).to_have_url(re.compile(r"q=Mobile"))
    walk.screen("ticket-choose-policy")
    page.locator("#policies a.choose").first.tap()
    expect(page.locator("#policy-system")).to_have_text("Portgate Mobile")

    email = f"{who['username']}@andina.example"
    page.select_option("#f-area", "technical_support")
    page.fill("#f-subject", "La tablet no sincroniza")
    page.fill("#f-email", email)
    page.fill("#f-email_confirm", email)
    page.fill("#f-phone", "+593 99 123 4567")
    page.fill("#f-phone_confirm", "+593 99 123 4567")
    page.fill("#f-contact_hours", "L-V 9:00-13:00")
    page.fill("#f-description", "Desde ayer la tablet de bodega no sincroniza.\nAdjunto foto de la pantalla.")
    page.set_input_files("#f-attachments", str(photo))
    walk.screen("ticket-new")
    page.locator("#submit-ticket").tap()

    expect(page.locator("#ticket-number")).to_have_text(re.compile(r"S_\d+_\d{14}"))
    expect(page.locator("#ticket-info")).to_contain_text(photo.name)
    page.fill("#f-body", "Adjunto otra captura, de la galería.")
    page.set_input_files("#f-attachments", str(gallery))
    page.locator("#send-reply").tap()
    expect(page.locator("#replies")).to_contain_text("Adjunto otra captura, de la galería.")
    expect(page.locator("#replies")).to_contain_text(gallery.name)
    walk.screen("ticket-thread")


def licences_and_policies(walk: Walk) -> None:
    page = walk.page
    walk.menu("/licences")
    page.select_option("#f-system", "Portgate Portal")
    page.locator("#serial-filter button[type=submit]").tap()
    expect(page).to_have_url(re.compile(r"system=Portgate"))
    walk.screen("licences")
    page.locator("#serials tbody tr", has_text="8092589D").locator("a.button-link").tap()
    expect(page.locator("#count-active")).to_have_text("2")
    walk.screen("licence-machines")
    page.locator("#show-inactive").tap()
    expect(page).to_have_url(re.compile(r"show=inactive"))
    expect(page.locator("#machines")).to_contain_text("ANDINA-OLD")
    walk.screen("licence-inactive")

    walk.menu("/policies")
    page.fill("#f-q", "4DF7800E")
    page.locator("#policy-filter button[type=submit]").tap()
    expect(page).to_have_url(re.compile(r"q=4DF7800E"))
    walk.screen("policies")
    page.locator("#policies a.button-link").first.tap()
    expect(page.locator("main")).to_contain_text("Portgate Mobile Licencia Anual")
    walk.screen("policy")


def gate_ticket_full_screen(walk: Walk, data_dir: Path) -> None:
    page = walk.page
    ticket_id = printed_ticket(data_dir / "portgate.db")
    with sqlite3.connect(data_dir / "portgate.db") as db:
        [(itinerary_id,)] = db.execute("SELECT itinerary_id FROM tickets WHERE id = ?", (ticket_id,)).fetchall()
    walk.menu("/tickets")
    walk.screen("gate-tickets")
    page.locator(f'a[href="/tickets/itinerary/{itinerary_id}"]').first.tap()
    page.locator('nav.filters a[href="?status=printed"]').tap()
    expect(page).to_have_url(re.compile(r"status=printed"))
    walk.screen("gate-itinerary")
    page.locator(f'tr[data-ticket="{ticket_id}"] a.on-phone').tap()
    expect(page).to_have_url(re.compile(rf"/tickets/{ticket_id}/phone$"))
    qr = page.locator("#qr svg")
    expect(qr).to_be_visible()
    box = qr.bounding_box()
    width = page.viewport_size["width"]
    assert box["width"] >= 0.6 * width and box["x"] >= 0 and box["x"] + box["width"] <= width  # big, whole
    digits = re.sub(r"\D", "", page.locator("#short-code").inner_text())
    assert len(digits) == 20
    background = page.evaluate("() => getComputedStyle(document.querySelector('#qr')).backgroundColor")
    assert background == "rgb(255, 255, 255)"
    expect(page.locator("#brightness-hint")).to_be_visible()
    walk.screen("gate-ticket")


@pytest.fixture(params=sorted(PHONES))
def walk(request, chromium, phone_server):
    context = chromium.new_context(base_url=phone_server.url, locale="es-EC", **PHONES[request.param])
    context.set_default_timeout(30_000)  # a shared, busy box: a tap may wait for a slow page
    yield Walk(context.new_page(), request.param)
    context.close()


def test_a_customer_day_on_the_phone(walk, phone_server, sms_gateway, tmp_path):
    who = REGISTRANTS[walk.device]
    register_with_the_texted_code(walk, sms_gateway, who)
    sign_in(walk, who)
    open_and_answer_a_support_ticket(walk, tmp_path, who)
    licences_and_policies(walk)
    gate_ticket_full_screen(walk, phone_server.data_dir)
