"""The installable app's own addresses, as a phone's browser fetches them: the manifest in the reader's
language with real icons, the service worker from the site's root, the install steps (not store links),
an offline page that carries nothing of whoever was signed in, and a session cache name per sign-in."""

from __future__ import annotations

import re

import cv2
import numpy as np

from server.pwa import SHELL_FILES
from tests.helpers import get_form, login
from tests.phone_support import another_phone

ANDINA = "Exportadora Andina S.A."


async def test_the_manifest_speaks_the_readers_language_and_lists_real_icons(client):
    spanish = await client.get("/manifest.webmanifest?lang=es")
    assert spanish.status == 200
    assert spanish.content_type == "application/manifest+json"
    es = await spanish.json(content_type=None)
    en = await (await client.get("/manifest.webmanifest", headers={"Accept-Language": "en-GB,en;q=0.9"})).json(
        content_type=None
    )
    assert (es["lang"], en["lang"]) == ("es", "en")
    assert es["name"] != en["name"] and "Portgate" in es["name"] and "tickets" in es["name"].lower()
    assert es["id"] == en["id"]  # one app in both languages
    for manifest in (es, en):
        assert manifest["display"] == "standalone" and manifest["dir"] == "ltr"
        assert manifest["start_url"].startswith(manifest["scope"]) and manifest["short_name"] == "Portgate"
        assert manifest["theme_color"] == "#0b5394"  # the portal's --brand
    sizes = set()
    for icon in es["icons"]:
        resp = await client.get(icon["src"])
        assert resp.status == 200 and resp.content_type == "image/png", icon
        image = cv2.imdecode(np.frombuffer(await resp.read(), np.uint8), cv2.IMREAD_UNCHANGED)
        width = int(icon["sizes"].split("x")[0])
        assert image.shape[:2] == (width, width), icon
        sizes.add((width, icon["purpose"]))
        if icon["purpose"] == "maskable":
            # Full bleed (a launcher's mask crops the corners away) and the mark inside the safe circle.
            assert image[0, 0, 3] == 255 and tuple(image[0, 0, :3]) == tuple(image[width // 2, 2, :3])
            _assert_mark_inside_safe_zone(image)
    assert {(192, "any"), (512, "any"), (192, "maskable"), (512, "maskable")} <= sizes


def _assert_mark_inside_safe_zone(image: np.ndarray) -> None:
    """Every white pixel of the mark lies inside the circle of radius 0.4 x size that every mask keeps."""
    size = image.shape[0]
    ys, xs = np.nonzero(image[:, :, :3].min(axis=2) > 128)
    assert len(xs), "the mark is missing"
    distances = np.hypot(xs - (size - 1) / 2, ys - (size - 1) / 2)
    assert distances.max() <= 0.4 * size


async def test_the_service_worker_is_served_from_the_root_fresh_with_a_shell_that_loads(client):
    resp = await client.get("/sw.js")
    assert resp.status == 200 and resp.content_type == "text/javascript"
    assert resp.headers["Service-Worker-Allowed"] == "/"
    assert "no-cache" in resp.headers["Cache-Control"]
    source = await resp.text()
    assert "__VERSION__" not in source and "__SHELL__" not in source
    assert '"/app/offline"' in source and '"/static/app/ticket.js"' in source
    for path in SHELL_FILES:  # one file missing would fail the worker's whole install
        assert (await client.get(path)).status == 200, path
    apple = await client.get("/static/app/apple-touch-icon.png")
    image = cv2.imdecode(np.frombuffer(await apple.read(), np.uint8), cv2.IMREAD_UNCHANGED)
    assert image.shape[:2] == (180, 180)


async def test_the_install_page_gives_the_android_and_iphone_steps_and_is_in_the_customers_menu(client):
    async with another_phone(client) as staff:
        await login(staff, "operaciones")
        assert 'href="/app/install"' not in await (await staff.get("/home")).text()  # staff carry no customer app
    await login(client, "andina", profile=ANDINA)
    home = await (await client.get("/home")).text()
    assert 'href="/app/install"' in home and "Instalar la app" in home
    page = await (await client.get("/app/install")).text()
    assert "Instalar la app" in page
    assert "Instalar app" in page and "Chrome" in page  # Android: Chrome's menu
    assert "Compartir" in page and "Añadir a pantalla de inicio" in page  # iPhone: Safari's share sheet
    assert "App Store" not in page and "Play Store" not in page  # no store: it installs from the site
    english = await (await client.get("/app/install", cookies={"pg_lang": "en"})).text()
    assert "Add to Home Screen" in english


async def test_the_offline_page_carries_nothing_of_the_signed_in_user(client):
    await login(client, "andina", profile=ANDINA)
    resp = await client.get("/app/offline")
    page = await resp.text()
    assert resp.status == 200
    assert "Sin conexión" in page and "Offline" in page
    for private in ("andina", ANDINA, "Andina", "portgate-cache", "csrf_token", "/logout"):
        assert private not in page, private


def _session_cache(page: str) -> str:
    return re.search(r'<meta name="portgate-cache" content="([^"]*)">', page)[1]


async def test_each_sign_in_gets_its_own_offline_cache_name_and_signed_out_pages_the_guests(client):
    login_page, _ = await get_form(client, "/login")
    assert _session_cache(login_page) == "guest"
    assert 'rel="manifest"' in login_page and "/static/app/register.js" in login_page
    await login(client, "andina", profile=ANDINA)
    first = _session_cache(await (await client.get("/home")).text())
    assert re.fullmatch(r"[0-9a-f]{24}", first)
    async with another_phone(client) as other:  # the same user on another phone: another session
        await login(other, "andina")
        assert _session_cache(await (await other.get("/profiles")).text()) not in (first, "guest")
    assert _session_cache(await (await client.get("/home")).text()) == first  # stable within the session


async def test_signing_out_tells_the_browser_to_clear_the_sites_caches_and_storage(client):
    await login(client, "andina", profile=ANDINA)
    page, hidden = await get_form(client, "/home")
    resp = await client.post("/logout", data=hidden, allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Clear-Site-Data"] == '"cache", "storage"'


async def test_a_visitor_finds_the_install_page_from_the_sign_in_page(client):
    """The sign-in page has no menu: a customer about to install the app must still find the steps."""
    login_page, _ = await get_form(client, "/login")
    assert 'href="/app/install"' in login_page
    resp = await client.get("/app/install", allow_redirects=False)
    assert resp.status == 200 and "Añadir a pantalla de inicio" in await resp.text()
