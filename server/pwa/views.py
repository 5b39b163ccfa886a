"""The web app's own addresses: its manifest, its service worker, the install steps and the offline page."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from server.i18n import N_, accept_language, pick_language, render
from server.pwa import HERE, SHELL_FILES, SHELL_VERSION
from server.web import CONFIG, LANG_COOKIE, read_cookie, render_page

routes = web.RouteTableDef()

#: The portal's own colours (``portal.css``: ``--brand`` and ``--bg``).
THEME_COLOR = "#0b5394"
BACKGROUND_COLOR = "#f4f6f8"


def _icon(name: str, size: int, purpose: str) -> dict[str, str]:
    return {"src": f"/static/app/{name}", "sizes": f"{size}x{size}", "type": "image/png", "purpose": purpose}


def manifest(lang: str) -> dict[str, Any]:
    """The web app manifest in ``lang``; its ``id`` is the same in every language (one app, not two)."""
    return {
        "id": "/app",
        "name": render(lang, N_("Portgate — gate tickets and support")),
        "short_name": "Portgate",
        "description": render(lang, N_("Your gate tickets at the kiosk, support tickets, licences and policies.")),
        "lang": lang,
        "dir": "ltr",
        "start_url": "/home?source=app",
        "scope": "/",
        "display": "standalone",
        "theme_color": THEME_COLOR,
        "background_color": BACKGROUND_COLOR,
        "icons": [
            _icon("icon-192.png", 192, "any"),
            _icon("icon-512.png", 512, "any"),
            _icon("icon-maskable-192.png", 192, "maskable"),
            _icon("icon-maskable-512.png", 512, "maskable"),
        ],
        "shortcuts": [{"name": render(lang, "Gate tickets"), "url": "/tickets"}],
    }


@routes.get("/manifest.webmanifest")
async def manifest_file(request: web.Request) -> web.Response:
    """The manifest in ``?lang`` (the page's language: browsers fetch manifests without cookies)."""
    lang = pick_language(
        request.query.get("lang"),
        read_cookie(request, LANG_COOKIE),
        accept_language(request.headers.get("Accept-Language")),
        default=request.app[CONFIG].default_language,
    )
    body = json.dumps(manifest(lang), ensure_ascii=False)
    response = web.Response(text=body, content_type="application/manifest+json")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Vary"] = "Accept-Language, Cookie"
    return response


def service_worker_source(version: str) -> str:
    """``sw.js`` with this build's shell version and files filled in."""
    source = (HERE / "sw.js").read_text()
    return source.replace('"__VERSION__"', json.dumps(version)).replace('["__SHELL__"]', json.dumps(SHELL_FILES))


@routes.get("/sw.js")
async def service_worker(request: web.Request) -> web.Response:
    """The worker, from the site's root so that it may control every page; never cached by HTTP, so a
    new version reaches phones on their next visit."""
    response = web.Response(text=service_worker_source(request.app[SHELL_VERSION]), content_type="text/javascript")
    response.headers["Service-Worker-Allowed"] = "/"
    response.headers["Cache-Control"] = "no-cache, no-store, max-age=0"
    return response


@routes.get("/app/install")
async def install_page(request: web.Request) -> web.Response:
    """How to put the app on the home screen, on Android and on iPhone (open to everyone: it is asked before
    signing in too)."""
    return render_page(request, "app/install.html")


@routes.get("/app/offline")
async def offline_page(request: web.Request) -> web.Response:
    """The page the worker shows when a page cannot be loaded: the same for everyone (it is kept offline,
    so it carries nothing of the visitor), in both languages."""
    return render_page(request, "app/offline.html")
