"""In Chromium emulating a phone: the app is installable (the DevTools protocol lists no installability
error), its service worker controls the pages, the app shell and a ticket opened once work with the
network off, the ticket turns "Eliminado" when the phone is next online after it was deleted, and after
signing out the browser's caches hold nothing of that user. Screenshots go to test-artifacts/phone/."""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser import CHROMIUM, CHROMIUM_ARGS, ROOT
from tests.dbaccess import db_value
from tests.phone_support import portal_api, printed_ticket, sign_in_on_the_phone

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

ANDINA = "Exportadora Andina S.A."
SHOTS = ROOT / "test-artifacts" / "phone"
#: A 390 x 844 touch phone running Chrome on Android (the browser that offers "Install app").
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 3,
    "is_mobile": True,
    "has_touch": True,
    "user_agent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Mobile Safari/537.36",
    "locale": "es-EC",
}


@pytest.fixture
def phone(chromium, live_server, tmp_path):
    """A phone's browser with a profile of its own: an incognito context (Playwright's default) can install
    no app, and Chromium says so."""
    context = chromium.browser_type.launch_persistent_context(
        tmp_path / "profile", executable_path=CHROMIUM, args=CHROMIUM_ARGS, base_url=live_server.url, **PHONE
    )
    context.set_default_timeout(15_000)
    yield context
    context.close()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"pwa-{name}.png"), full_page=True)


def delete_through_the_api(url: str, ticket_id: int) -> None:
    """The customer deletes the ticket from elsewhere (the app's API on another device)."""
    portal_api(url, "andina", ANDINA)("DELETE", f"/api/v1/tickets/{ticket_id}")


def eventually(page, script: str, arg=None, timeout: float = 15.0):
    """Poll ``script`` (a JavaScript function) until it answers something truthy (the pages' CSP forbids the
    string evaluation ``wait_for_function`` relies on)."""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(script, arg)
        if value or time.monotonic() > deadline:
            assert value, f"still false after {timeout} s: {script}"
            return value
        time.sleep(0.1)


def controlled_by_the_worker(page) -> str:
    """Wait until the app's worker controls the page and knows whose pages it shows; returns that cache key."""
    eventually(page, "() => navigator.serviceWorker.controller !== null")
    return eventually(page, "() => document.documentElement.dataset.appSession")


def cache_contents(page) -> dict[str, list[str]]:
    """Every cache of the site, with the paths it holds, as the page's own script sees them."""
    return page.evaluate(
        """async () => {
            const out = {};
            for (const name of await caches.keys()) {
                const cache = await caches.open(name);
                out[name] = (await cache.keys()).map((r) => new URL(r.url).pathname);
            }
            return out;
        }"""
    )


def test_the_app_is_installable_and_its_worker_controls_the_pages(phone, live_server):
    page = phone.pages[0]
    sign_in_on_the_phone(page, "andina", ANDINA)
    page.goto("/app/install")
    controlled_by_the_worker(page)
    cdp = phone.new_cdp_session(page)
    manifest = cdp.send("Page.getAppManifest")
    assert manifest["errors"] == [], manifest["errors"]
    assert manifest["url"].endswith("/manifest.webmanifest?lang=es")
    assert cdp.send("Page.getInstallabilityErrors")["installabilityErrors"] == []
    expect(page.locator("#install-button")).to_be_visible()  # Chrome offered its install prompt to the page
    expect(page.locator("#android")).to_contain_text("Instalar app")
    expect(page.locator("#ios")).to_contain_text("Añadir a pantalla de inicio")
    shot(page, "install")


def test_the_shell_and_an_opened_ticket_work_offline_and_nothing_stays_after_sign_out(phone, live_server):
    ticket_id = printed_ticket(live_server.db_url)
    page = phone.pages[0]
    sign_in_on_the_phone(page, "andina", ANDINA)
    page.goto(f"/tickets/{ticket_id}/phone")
    session = controlled_by_the_worker(page)
    page.reload()  # now through the worker, which keeps the ticket for this session
    expect(page.locator("#qr svg")).to_be_visible()
    eventually(page, "async (name) => (await (await caches.open(name)).keys()).length > 0", f"portgate-user-{session}")
    shot(page, "ticket")
    page.locator("#create-link").tap()  # a link for the driver: its address is shown this once
    expect(page.locator("#share-url")).to_be_visible()

    phone.set_offline(True)
    page.goto(f"/tickets/{ticket_id}/phone")
    expect(page.locator("#qr svg")).to_be_visible()
    expect(page.locator("#offline-badge")).to_be_visible()
    expect(page.locator("#ticket")).to_have_attribute("data-kept", "1")  # the phone's copy, and it says so
    expect(page.locator("#share-url")).to_have_count(0)  # without the one-time address and its message
    expect(page.locator("#flash")).to_have_count(0)
    shot(page, "ticket-offline")
    page.goto("/tickets")  # never opened: the app shell's offline page, listing the kept ticket
    expect(page.locator("#offline h1")).to_contain_text("Sin conexión")
    expect(page.locator("#kept-tickets a")).to_have_attribute("href", f"/tickets/{ticket_id}/phone")
    shot(page, "offline")

    page.locator("#kept-tickets a").tap()
    expect(page.locator("#qr svg")).to_be_visible()
    delete_through_the_api(live_server.url, ticket_id)
    phone.set_offline(False)  # back online: the page reloads and the deletion shows
    expect(page.locator("#status")).to_have_text("Eliminado", timeout=15_000)
    expect(page.locator("#qr")).to_have_count(0)
    phone.set_offline(True)  # and the kept copy is the deleted one now
    page.goto(f"/tickets/{ticket_id}/phone")
    expect(page.locator("#status")).to_have_text("Eliminado")
    shot(page, "ticket-deleted")
    phone.set_offline(False)

    page.goto("/home")
    # The sign-out's own answer must clear the phone: the script of the sign-in page it leads to (which
    # would move the worker to the guest's cache) is held back until that is seen. Were the worker still
    # there, it would serve that script from its shell, and still be registered.
    phone.route("**/static/app/register.js", lambda route: route.abort())
    page.evaluate("document.querySelector('form[action=\"/logout\"]').submit()")
    expect(page).to_have_url(re.compile(r"/login"))
    eventually(
        page,
        """async () => (await navigator.serviceWorker.getRegistrations()).length === 0
            && !(await caches.keys()).some((n) => n.startsWith('portgate-user-'))""",
    )
    for name, paths in cache_contents(page).items():
        assert not any(p.startswith("/tickets") for p in paths), (name, paths)
    phone.unroute("**/static/app/register.js")
    page.goto("/login")
    assert controlled_by_the_worker(page) == "guest"  # the sign-in page installed the app shell again
    phone.set_offline(True)
    page.goto(f"/tickets/{ticket_id}/phone")
    expect(page.locator("#offline h1")).to_contain_text("Sin conexión")
    phone.set_offline(False)


def test_a_session_that_ended_without_signing_out_leaves_nothing_for_the_next_visitor(phone, live_server):
    ticket_id = printed_ticket(live_server.db_url)
    page = phone.pages[0]
    sign_in_on_the_phone(page, "andina", ANDINA)
    page.goto(f"/tickets/{ticket_id}/phone")
    session = controlled_by_the_worker(page)
    page.reload()
    eventually(page, "async (name) => (await (await caches.open(name)).keys()).length > 0", f"portgate-user-{session}")
    phone.clear_cookies()  # the session expired: no sign-out, so no Clear-Site-Data either
    page.goto("/login")  # the next person on this phone
    eventually(page, "async (name) => !(await caches.keys()).includes(name)", f"portgate-user-{session}")
    phone.set_offline(True)
    page.goto(f"/tickets/{ticket_id}/phone")
    expect(page.locator("#offline h1")).to_contain_text("Sin conexión")
    expect(page.locator("#kept-tickets")).to_be_hidden()
    phone.set_offline(False)


def opens_of(database: str, link_id: int) -> tuple[int, int]:
    """A link's open count and its audited opens, from the running server's database (its ``db_url``)."""
    count = db_value(database, "SELECT open_count FROM ticket_share_links WHERE id = ?", (link_id,))
    audited = db_value(
        database,
        "SELECT COUNT(*) FROM audit_log WHERE event = 'ticket.link_opened' AND detail LIKE ?",
        (f"% #{link_id}",),
    )
    return count, audited


def test_a_drivers_page_checks_its_ticket_without_counting_opens(phone, live_server):
    ticket_id = printed_ticket(live_server.db_url)
    api = portal_api(live_server.url, "andina", ANDINA)
    link = api("POST", f"/api/v1/tickets/{ticket_id}/share-links")
    page = phone.pages[0]
    page.goto(urlsplit(link["url"]).path)  # the driver taps the link (never signed in on this phone)
    expect(page.locator("#qr svg")).to_be_visible()
    # The phone comes back online, and the driver back to the page: each time the page checks its ticket.
    dispatch = "([target, name]) => (target === 'window' ? window : document).dispatchEvent(new Event(name))"
    for target, event in (("window", "online"), ("document", "visibilitychange"), ("window", "online")):
        with page.expect_response(lambda r: r.request.headers.get("x-portgate-check") == "1") as checked:
            page.evaluate(dispatch, [target, event])
        assert checked.value.json() == {"status": "valid"}
    assert opens_of(live_server.db_url, link["id"]) == (1, 1)
    api("DELETE", f"/api/v1/tickets/{ticket_id}/share-links/{link['id']}")
    page.evaluate("() => window.dispatchEvent(new Event('online'))")
    expect(page.locator("#status")).to_contain_text("Este enlace ya no funciona")  # it reloaded: the real open
    shot(page, "driver-link-revoked")
