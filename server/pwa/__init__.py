"""The customers' installable web app (PWA): manifest, service worker, install and offline pages.

The service worker (``server/pwa/sw.js``) keeps an app shell for offline use and the gate tickets a
user opened, in a cache named by an opaque key of the session (:func:`cache_key`): every page tells the
worker whose pages it may keep (``app/_head.html``), the worker deletes every other session's cache,
and signing out clears the site's caches outright (``Clear-Site-Data``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import aiohttp_jinja2
from aiohttp import web

from server.i18n import N_
from server.menu import MENU, MenuEntry
from server.security import sign
from server.web import PORTAL_CUSTOMER_ROLES, SECRET, Principal, principal_of

HERE = Path(__file__).parent
STATIC = HERE.parent / "static"

#: The cache key of a visitor with no session: only driver share links (bearer links) are kept under it.
GUEST = "guest"
#: The header a page the worker may keep offline names its cache with (the session's :func:`cache_key`).
CACHE_HEADER = "X-Portgate-Cache"

#: What the worker stores at install: enough to open the app and show a ticket with no network.
SHELL_FILES = (
    "/app/offline",
    "/static/app/phone.css",
    "/static/app/register.js",
    "/static/app/ticket.js",
    "/static/app/offline.js",
    "/static/app/icon-192.png",
    "/static/app/icon-512.png",
    "/static/app/icon-maskable-192.png",
    "/static/app/icon-maskable-512.png",
    "/static/app/apple-touch-icon.png",
)

#: The menu entry of the install page: customers (and prospects) are the ones who carry the app.
MENU_ENTRY = MenuEntry(N_("Install the app"), "/app/install", PORTAL_CUSTOMER_ROLES)

SHELL_VERSION = web.AppKey("pwa_shell_version", str)


def cache_key(secret: str, principal: Principal | None) -> str:
    """The opaque name of a session's offline cache: it says nothing of the user and changes each sign-in."""
    if principal is None or not principal.session_hash:
        return GUEST
    return sign(secret, f"pwa-cache|{principal.session_hash}")[:24]


def request_cache_key(request: web.Request) -> str:
    return cache_key(request.app[SECRET], principal_of(request))


def shell_version() -> str:
    """A digest of the worker and its static shell files: any change makes browsers install the new worker."""
    digest = hashlib.sha256((HERE / "sw.js").read_bytes())
    for path in SHELL_FILES:
        if path.startswith("/static/"):
            digest.update((STATIC / path.removeprefix("/static/")).read_bytes())
    return digest.hexdigest()[:16]


def setup(app: web.Application) -> None:
    """The app's routes, its menu entry and the template global the pages' head uses."""
    from server.pwa import views  # the views import this module's keys

    app[SHELL_VERSION] = shell_version()
    app.router.add_routes(views.routes)
    app[MENU].add(MENU_ENTRY)
    env = aiohttp_jinja2.get_env(app)
    env.globals["pwa_cache_key"] = lambda principal: cache_key(app[SECRET], principal)
