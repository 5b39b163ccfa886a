"""Every customer page on a phone, in Chromium's device emulation against a real demo server.

A 390×844 touch phone (iPhone-like, 3× pixels) and a 360×800 Android walk the portal as the demo
customers: the pages must not scroll sideways, cut off a button, offer tap targets under 44 px,
or start with a tall header; tables show as cards that keep every column's name; the menu opens
from its button. The desktop keeps its side menu and its tables. Screenshots of every screen are
kept under test-artifacts/phone/<width>/ for review.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from server.demo import DEMO_PASSWORD
from tests.browser import answer_human_check
from tests.phone_layout import MIN_TAP, PHONES, layout_problems, screenshot
from tests.phone_support import portal_api, printed_ticket

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

DEVICES = pytest.mark.parametrize("device", sorted(PHONES))
ANDINA_NAME = "Exportadora Andina S.A."
ANDINA_TAX_ID = "0991234567001"
#: The mobile phone each device registers with (a code is texted to it: by the demo's log sender).
DEVICE_PHONES = {"iphone-390": "+593 99 390 0390", "android-360": "+593 99 360 0360"}
#: The widest screen that gets the phone layout: a small tablet held upright.
TABLET = {"tablet-768": {"viewport": {"width": 768, "height": 1024}, "is_mobile": True, "has_touch": True}}


@pytest.fixture
def open_page(new_page):
    """A page on a phone of ``PHONES`` (or on a 1280×800 desktop), in Spanish, with its own cookies."""

    def make(device: str | None = None, **options):
        settings = {**PHONES, **TABLET}[device] if device else {"viewport": {"width": 1280, "height": 800}}
        return new_page(locale="es-EC", **settings, **options)

    return make


class Walk:
    """One person's walk through the portal on one device: what each screen got wrong, and its screenshot."""

    def __init__(self, page, device: str, who: str) -> None:
        self.page, self.device, self.who = page, device, who
        self.problems: list[str] = []
        self.seen: list[str] = []

    def check(self, name: str) -> None:
        self.page.wait_for_load_state("load")
        screenshot(self.page, self.device, f"{self.who}-{name}")
        self.seen.append(name)
        self.problems += [f"{name} ({self.page.url}): {p}" for p in layout_problems(self.page)]

    def visit(self, name: str, path: str) -> None:
        response = self.page.goto(path)
        assert response is not None and response.status < 500, f"{path}: {response and response.status}"
        self.check(name)

    def follow(self, name: str, selector: str) -> bool:
        """Tap the first ``selector`` on the page (as a finger would) and check where it leads; False if none."""
        link = self.page.locator(selector).first
        if not link.count():
            return False
        link.tap()
        self.check(name)
        return True


def sign_in(page, login: str, company: str, role_label: str) -> None:
    """Sign in in Spanish, tapping (or clicking, on a desktop) as a person would, with ``company``'s profile."""
    page.goto("/login")
    touch = page.evaluate("navigator.maxTouchPoints > 0")
    page.fill("#f-login", login)
    page.fill("#f-password", DEMO_PASSWORD)
    answer_human_check(page)
    for target in (
        page.locator("#submit"),
        page.locator("label.profile-option", has_text=company).filter(has_text=role_label).first,
        page.locator("#enter"),
    ):
        target.tap() if touch else target.click()
    expect(page).to_have_url(re.compile(r"/home$"))


def walk_gate_tickets(walk: Walk) -> None:
    """Gate tickets: the balance, generating one, its print list, deleting it and the list after."""
    page = walk.page
    walk.visit("tickets", "/tickets")
    walk.visit("generate", "/tickets/generate?quantity=1")
    page.fill("#f-quantity", "1")
    page.select_option("#f-itinerary_id", index=1)
    page.locator("input[name=services]").first.check()
    page.locator("#process").tap()
    expect(page).to_have_url(re.compile(r"/tickets/generations/\d+"))
    walk.check("generated")
    walk.follow("print-list", "#view-tickets")
    expect(page.locator("#tickets a.on-phone").first).to_have_attribute("href", re.compile(r"^/tickets/\d+/phone$"))
    walk.follow("ticket-on-phone", "#tickets a.on-phone")  # its phone page: the back link, the share form
    page.go_back()
    walk.follow("delete", "#tickets a.delete")
    page.locator("#confirm-delete").tap()
    expect(page).to_have_url(re.compile(r"deleted="))
    walk.check("deleted")


def walk_helpdesk(walk: Walk) -> None:
    """Support tickets (list, detail, new), licences (list, serial, inactive, machine) and policies."""
    walk.visit("support-tickets", "/helpdesk/tickets")
    walk.follow("support-ticket", "#tickets a.control")
    walk.visit("new-ticket-policy", "/helpdesk/tickets/new")
    walk.follow("new-ticket", "#policies a.choose")
    walk.visit("licences", "/licences")
    if walk.follow("licence", "#serials tbody tr[data-status=valid] a.button-link"):
        serial = walk.page.url
        walk.follow("machine", "#machines a.button-link:not(.deactivate)")
        walk.visit("licence-inactive", f"{serial}?show=inactive")
        walk.visit("licence-again", serial)
        walk.follow("machine-deactivate", "#machines a.deactivate")
    walk.visit("policies", "/policies")
    walk.follow("policy", "#policies a.button-link")


def walk_account(walk: Walk) -> None:
    walk.visit("my-account", "/account")
    walk.visit("password", "/password")
    walk.visit("profiles", "/profiles")
    walk.visit("install-app", "/app/install")
    walk.visit("not-found", "/tickets/itinerary/999999")


CUSTOMERS = {
    # demo user, company, role label (Spanish), what they do
    "andina": ("Exportadora Andina", "Administrador del cliente"),
    "pacifico": ("Importadora del Pacífico", "Cliente"),
    "agente": ("Importadora del Pacífico", "Cliente"),
}


@DEVICES
@pytest.mark.parametrize("login", sorted(CUSTOMERS))
def test_every_customer_page_fits_a_phone(open_page, device, login):
    company, role = CUSTOMERS[login]
    page = open_page(device)
    sign_in(page, login, company, role)
    walk = Walk(page, device, login)
    walk.check("home")
    if "izquierda" in page.locator("main").inner_text():  # there is no menu on the left of a phone
        walk.problems.append("home: the text sends the reader to a menu on the left")
    walk_gate_tickets(walk)
    walk_helpdesk(walk)
    walk_account(walk)
    if login == "andina":  # a customer administrator's own page
        walk.visit("company-users", "/company/users")
    assert walk.problems == [], "\n".join(walk.problems)
    assert {"print-list", "deleted", "licence", "machine", "policy", "new-ticket"} <= set(walk.seen)
    if login == "andina":
        assert {"support-ticket", "company-users"} <= set(walk.seen)


def driver_links(live_server) -> tuple[str, str]:
    """The paths of a live driver link to a ticket of Andina's, and of one its company revoked."""
    api = portal_api(live_server.url, "andina", ANDINA_NAME)
    base = f"/api/v1/tickets/{printed_ticket(live_server.db_url)}/share-links"
    live, dead = api("POST", base), api("POST", base)
    api("DELETE", f"{base}/{dead['id']}")
    return urlsplit(live["url"]).path, urlsplit(dead["url"]).path


def ask_for_a_texted_code(walk: Walk, phone: str) -> None:
    """Registration by phone as far as its code page: the RFC, an e-mail on file, the phone typed twice."""
    page = walk.page
    walk.visit("register-phone", "/register/phone")
    page.fill("#f-tax_id", ANDINA_TAX_ID)
    page.locator("#submit").tap()
    page.locator("label.profile-option").first.tap()
    page.fill("#f-phone", phone)
    page.fill("#f-phone_confirm", phone)
    answer_human_check(page)
    walk.check("register-phone-email-and-phone")
    page.locator("#submit").tap()
    expect(page).to_have_url(re.compile(r"/register/phone/code$"))
    walk.check("register-phone-code")


@DEVICES
def test_signed_out_pages_fit_a_phone(open_page, device, live_server):
    walk = Walk(open_page(device), device, "visitor")
    link, dead_link = driver_links(live_server)
    for name, path in (
        ("login", "/login"),
        ("forgot", "/password/forgot"),
        ("reset", "/password/reset?token=not-a-real-one"),
        ("register", "/register"),
        ("register-customer", "/register/customer"),
        ("register-prospect", "/register/prospect"),
        ("install-app", "/app/install"),
        ("offline", "/app/offline"),
        ("driver-link", link),
        ("driver-link-dead", dead_link),
    ):
        walk.visit(name, path)
    expect(walk.page.locator("#reason")).to_be_visible()  # the dead link's page, answered 410
    ask_for_a_texted_code(walk, DEVICE_PHONES[device])
    assert walk.problems == [], "\n".join(walk.problems)


def tap_height(locator) -> float:
    return locator.bounding_box()["height"]


STAFF_PAGES = {
    # demo user: the terminal's lists a staff member may check from a phone
    "admin": (
        "/admin/users",
        "/admin/licences",
        "/helpdesk/console",
        "/admin/registrations",
        "/admin/integrations",
        "/admin/audit",
        "/admin/mail",
        "/gate/kiosks",
        "/gate/scans",
        "/gate/conflicts",
    ),
    "facturacion": ("/billing/purchases", "/billing/companies"),
    "operaciones": ("/ops/services", "/ops/itineraries"),
}


def register_an_account(page) -> None:
    """Someone registers on the portal, so the administrator has a registration to decide on."""
    page.goto("/register")
    for name, value in (
        ("full_name", "Lucía Torres"),
        ("username", "ltorres.phone"),
        ("email", "lucia.phone@andina.example"),
        ("email_confirm", "lucia.phone@andina.example"),
        ("tax_id", ANDINA_TAX_ID),
        ("phone", "+593 99 123 4567"),
        ("password", "Puerto2026seguro"),
        ("password_confirm", "Puerto2026seguro"),
    ):
        page.fill(f"#f-{name}", value)
    answer_human_check(page)
    page.locator("#submit").tap()
    expect(page).not_to_have_url(re.compile(r"/register$"))


def add_a_kiosk_and_a_token(page) -> None:
    """The administrator adds a kiosk and an integration token, so those lists have a row each."""
    page.goto("/gate/kiosks")
    page.fill("#f-name", "Garita Teléfono")
    page.locator("#new-kiosk button[type=submit]").tap()
    expect(page).to_have_url(re.compile(r"/gate/kiosks/\d+/enrol-code$"))  # its code, shown once
    page.goto("/admin/integrations")
    page.fill("#f-name", "ERP del teléfono")
    page.select_option("#f-role", index=1)
    page.locator("#create-token").tap()
    expect(page.locator("#tokens tbody tr[data-token]").first).to_be_visible()


@pytest.mark.parametrize("login", sorted(STAFF_PAGES))
def test_the_staff_lists_fit_a_phone_too(open_page, login):
    page = open_page("iphone-390")
    if login == "admin":
        register_an_account(page)
    sign_in(page, login, "Terminal Portuaria Demo", "")
    if login == "admin":
        add_a_kiosk_and_a_token(page)
    walk = Walk(page, "iphone-390", login)
    for path in STAFF_PAGES[login]:
        walk.visit(path.strip("/").replace("/", "-"), path)
    if login == "admin":
        walk.follow("user", "#users a")
        # Lists that have rows now, each row a card whose cells carry their column's name (checked above).
        for rows in ("#registrations", "#tokens", "#audit", "#kiosks"):
            walk.page.goto(STAFF_LIST_PAGES[rows])
            expect(walk.page.locator(f"{rows} tbody tr").first).to_have_css("display", "block")
            assert walk.page.locator(f"{rows} tbody td[data-label]").count() > 0, rows
    assert walk.problems == [], "\n".join(walk.problems)


STAFF_LIST_PAGES = {
    "#registrations": "/admin/registrations",
    "#tokens": "/admin/integrations",
    "#audit": "/admin/audit",
    "#kiosks": "/gate/kiosks",
}


@DEVICES
def test_the_menu_opens_from_its_button_and_every_entry_is_in_reach(open_page, device):
    page = open_page(device)
    sign_in(page, "andina", *CUSTOMERS["andina"])
    button = page.locator("#menu-button")
    menu = page.locator("nav.sidemenu")
    expect(button).to_be_visible()
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(menu).to_be_hidden()  # the page starts with its content, not with the menu
    assert page.locator("main h1").bounding_box()["y"] < 200

    button.tap()
    expect(button).to_have_attribute("aria-expanded", "true")
    entries = menu.locator("a")
    assert entries.count() >= 6
    width = page.viewport_size["width"]
    for i in range(entries.count()):
        entry = entries.nth(i)
        entry.scroll_into_view_if_needed()
        box = entry.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width and box["height"] >= MIN_TAP, entry.inner_text()
    for account_link in ("#change-password", "#logout"):
        expect(page.locator(account_link)).to_be_visible()
        assert tap_height(page.locator(account_link)) >= MIN_TAP
    screenshot(page, device, "andina-menu-open")

    button.tap()
    expect(menu).to_be_hidden()
    button.tap()
    menu.get_by_role("link", name="Licencias").tap()
    expect(page).to_have_url(re.compile(r"/licences$"))
    expect(page.locator("nav.sidemenu")).to_be_hidden()  # a new page starts with the menu closed
    page.keyboard.press("Escape")  # harmless when closed
    button = page.locator("#menu-button")
    button.tap()
    page.keyboard.press("Escape")
    expect(button).to_have_attribute("aria-expanded", "false")


@DEVICES
def test_without_javascript_the_menu_opens_from_a_link(open_page, device):
    page = open_page(device, java_script_enabled=False)
    sign_in(page, "andina", *CUSTOMERS["andina"])
    menu = page.locator("nav.sidemenu")
    expect(menu).to_be_hidden()
    assert layout_problems(page) == []
    opener = page.locator("a.menu-link-open")
    expect(opener).to_be_visible()
    assert tap_height(opener) >= MIN_TAP
    opener.tap()
    expect(page).to_have_url(re.compile(r"#menu$"))
    expect(menu.get_by_role("link", name="Licencias")).to_be_in_viewport()
    expect(page.locator("#logout")).to_be_visible()
    screenshot(page, device, "andina-menu-open-without-javascript")
    page.locator("a.menu-link-close").tap()
    expect(menu).to_be_hidden()
    expect(page.locator("#logout")).to_be_hidden()


def test_the_desktop_keeps_its_side_menu_and_its_tables(open_page):
    page = open_page()
    sign_in(page, "andina", *CUSTOMERS["andina"])
    page.goto("/licences")
    screenshot(page, "desktop", "andina-licences")
    menu = page.locator("nav.sidemenu").bounding_box()
    assert menu["x"] == 0 and 180 <= menu["width"] <= 260 and menu["y"] < 80
    expect(page.locator("#menu-button")).to_be_hidden()
    expect(page.locator("a.menu-link-open")).to_be_hidden()
    for link in ("#my-account", "#change-password", "#logout"):
        expect(page.locator(link)).to_be_visible()
    assert page.locator("header.topbar").bounding_box()["height"] < 70
    table = page.locator("#serials")
    assert table.evaluate("t => getComputedStyle(t).display") == "table"
    expect(table.locator("thead th").first).to_be_visible()
    cells = [table.locator("tbody tr").first.locator("td").nth(i).bounding_box() for i in range(3)]
    assert cells[0]["y"] == cells[1]["y"] == cells[2]["y"] and cells[0]["x"] < cells[1]["x"] < cells[2]["x"]
    assert not table.locator("td").first.evaluate("td => getComputedStyle(td, '::before').content.includes('Acc')")
    page.goto("/tickets/generate")
    assert page.locator("#f-quantity").bounding_box()["height"] < MIN_TAP  # desktop controls keep their size
    page.goto("/helpdesk/tickets/new")
    page.locator("#policies a.choose").first.click()
    columns = page.locator("#ticket-form").evaluate("f => getComputedStyle(f).gridTemplateColumns.split(' ').length")
    assert columns > 1  # the desktop's form keeps its columns


def fields_in_one_column(page, *names: str) -> list[str]:
    """What is wrong with ``names`` as a phone column: each field below the one before it, full width."""
    boxes = {name: page.locator(f"#f-{name}").bounding_box() for name in names}
    problems = [f"#f-{name} is narrow" for name in names if boxes[name]["width"] < 0.7 * 360]
    for before, name in zip(names, names[1:], strict=False):
        if boxes[name]["x"] != boxes[before]["x"] or boxes[name]["y"] <= boxes[before]["y"]:
            problems.append(f"#f-{name} is not right under #f-{before}")
    return problems


@pytest.mark.parametrize("device", [*sorted(PHONES), "tablet-768"])
def test_forms_are_one_column_with_each_confirmation_after_its_field(open_page, device):
    visitor = open_page(device)
    visitor.goto("/register")
    problems = fields_in_one_column(
        visitor, "email", "email_confirm", "tax_id", "phone", "password", "password_confirm"
    )
    visitor.goto("/register/prospect")
    problems += fields_in_one_column(visitor, "email", "email_confirm", "phone", "phone_confirm")
    page = open_page(device)
    sign_in(page, "andina", *CUSTOMERS["andina"])
    page.goto("/helpdesk/tickets/new")
    page.locator("#policies a.choose").first.tap()
    problems += fields_in_one_column(page, "subject", "email", "email_confirm", "phone", "phone_confirm")
    page.goto("/company/users")
    problems += fields_in_one_column(page, "username", "email", "email_confirm", "phone")
    page.goto("/password")
    problems += fields_in_one_column(page, "current_password", "new_password", "new_password_confirm")
    assert problems == []


@DEVICES
def test_english_pages_fit_a_phone_and_name_no_layout(open_page, device):
    page = open_page(device)
    sign_in(page, "andina", *CUSTOMERS["andina"])
    page.goto("/lang/en?next=/home")
    assert "left" not in page.locator("main").inner_text()  # "Every option of your profile is in the menu."
    walk = Walk(page, device, "andina-en")
    walk.check("home")
    for name, path in (("tickets", "/tickets"), ("licences", "/licences"), ("policies", "/policies")):
        walk.visit(name, path)
    walk.follow("print-list", "#summaries a.button-link")
    walk.visit("support-tickets", "/helpdesk/tickets")
    assert walk.problems == [], "\n".join(walk.problems)
