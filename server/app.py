"""The application factory: ``create_app(config)`` wires areas, templates and long-lived resources."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import aiohttp_jinja2
import jinja2
from aiohttp import web

from server import accounts, gate, helpdesk, mail_outbox, metrics, notify, openapi, pwa, tickets, timefmt
from server.config import Config
from server.db import Database
from server.human_check import BuiltinHumanCheck, HostedCaptcha
from server.i18n import render
from server.mail import Mailer
from server.menu import BASE_ENTRIES, MENU, Menu
from server.openapi import API_DOCS, ApiDocs
from server.proxies import client_behind_proxy
from server.sms import sms_sender
from server.tickets import api as tickets_api
from server.tickets import views as tickets_views
from server.web import (
    CONFIG,
    DB,
    HTTP,
    HUMAN_CHECK,
    MAILER,
    SECRET,
    SMS,
    add_security_headers,
    csrf_middleware,
    error_middleware,
    session_middleware,
)

HERE = Path(__file__).parent
log = logging.getLogger(__name__)


def load_secret(config: Config) -> str:
    """The configured secret, or one generated once into ``<data_dir>/secret.key`` (mode 0600).

    Safe when several processes start at once: the key is written whole to a temporary file and
    linked into place, which fails if another process linked first; then everyone reads that one.
    """
    if config.security.secret_key:
        return config.security.secret_key
    path = config.data_path / "secret.key"
    if not path.exists():
        config.data_path.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".secret.key.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
                fh.flush()
                os.fsync(fh.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(draft, path)
        finally:
            draft.unlink()
    return path.read_text().strip()


async def _resources(app: web.Application) -> AsyncIterator[None]:
    """Open the database, HTTP client and senders at start; close them at shutdown."""
    config = app[CONFIG]
    db = Database(config.db_url, readers=config.db_readers, pool_size=config.db_pool_size)
    session: aiohttp.ClientSession | None = None
    try:
        db.migrate()
        app[DB] = db
        session = aiohttp.ClientSession()
        app[HTTP] = session
        if config.security.human_check == "hosted":
            app[HUMAN_CHECK] = HostedCaptcha(
                config.security.hosted_captcha_url,
                config.security.hosted_captcha_secret,
                config.security.hosted_captcha_site_key,
                session,
            )
        else:
            app[HUMAN_CHECK] = BuiltinHumanCheck(app[SECRET], db=db)
    except BaseException:
        # Closed before the failure reaches the operator: a PostgreSQL pool left open keeps retrying in its
        # worker threads, and their warnings followed the one-line "cannot start" message.
        if session is not None:
            await session.close()
        db.close()
        raise
    yield
    await session.close()
    db.close()


async def healthz(request: web.Request) -> web.Response:
    """Liveness for load balancers and tests; ``pid`` tells which worker process answered."""
    await request.app[DB].read(lambda db: db.execute("SELECT 1").fetchone())
    return web.json_response({"status": "ok", "pid": os.getpid()})


def create_app(config: Config) -> web.Application:
    proxies = config.security.proxy_networks
    behind_proxy = [client_behind_proxy(proxies)] if proxies else []
    app = web.Application(
        middlewares=[*behind_proxy, error_middleware, session_middleware, csrf_middleware],
        client_max_size=30 * 1024 * 1024,
        # Request bodies are decoded by ``server.web.request_bytes``: with aiohttp decoding them, a coding
        # it lacks (br, zstd) was refused in plain text before our error shape, a false gzip body was a 500.
        handler_args={"auto_decompress": False},
    )
    app.on_response_prepare.append(add_security_headers)
    app[CONFIG] = config
    app[SECRET] = load_secret(config)
    app[MAILER] = Mailer(config.mail, config.mail_folder)
    app[SMS] = sms_sender(config, lambda: app[HTTP])  # the session opens with the app (_resources)
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined if os.environ.get("PORTGATE_STRICT_TEMPLATES") else jinja2.Undefined,
    )
    env.globals["render"] = render
    zone = config.zone
    env.globals["terminal_zone"] = config.timezone
    timefmt.install_filters(env, zone)  # every page's times in the reader's language
    app[MENU] = Menu(*BASE_ENTRIES)
    app[API_DOCS] = ApiDocs()
    app.cleanup_ctx.append(_resources)
    app.cleanup_ctx.append(notify.listener_ctx)  # before the areas that subscribe to other nodes' changes
    mail_outbox.setup(app)  # after the database's context: mail is queued in it and delivered by its job
    app.router.add_get("/healthz", healthz)
    app.router.add_static("/static", HERE / "static", name="static")
    accounts.setup(app)
    tickets.setup(app)
    app.router.add_routes(tickets_views.routes)
    app.router.add_routes(tickets_api.routes)
    app[MENU].add(*tickets_views.MENU_ENTRIES)
    tickets_api.document_routes(app[API_DOCS])
    gate.setup(app)
    helpdesk.setup(app)
    pwa.setup(app)  # the installable app: manifest, service worker, install and offline pages
    openapi.setup(app)
    metrics.setup(app)  # /metrics and its response counter, only when [metrics] enabled
    return app
