"""A stand-in SMS gateway on loopback: the one part of the SMS path that cannot exist here.

A tiny aiohttp server in its own thread (so a test's own loop, or a separate server process, can
reach it alike). It records every request it gets (headers and JSON body) and answers from a script:
queue a status (``answer(500)``) or a delay in seconds (``answer(delay=2)``); once the script is
used up it answers 200 at once, as a working gateway does.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from aiohttp import web

from tests.helpers import api_human

#: The demo's existing customer who registers by phone: Exportadora Andina, whose own phone in the
#: billing registry is COMPANY_PHONE (a code sent there makes an active account at once).
ANDINA = "0991234567001"
COMPANY_PHONE = "+593 4 000 0000"
OTHER_PHONE = "+593 99 111 2233"
NEW_ACCOUNT = {
    "full_name": "Jorge Jefe",
    "username": "jjefe",
    "password": "Andina2026clave",
    "password_confirm": "Andina2026clave",
}


@dataclass
class ReceivedSms:
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class SmsGateway:
    received: list[ReceivedSms] = field(default_factory=list)
    script: list[tuple[int, float]] = field(default_factory=list)
    url: str = ""
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None

    def answer(self, status: int = 200, *, delay: float = 0.0) -> None:
        """The next request gets ``status``, after ``delay`` seconds."""
        self.script.append((status, delay))

    async def _send(self, request: web.Request) -> web.Response:
        self.received.append(ReceivedSms(dict(request.headers), await request.json()))
        status, delay = self.script.pop(0) if self.script else (200, 0.0)
        if delay:
            await asyncio.sleep(delay)
        return web.json_response({"accepted": status < 400}, status=status)

    def start(self) -> SmsGateway:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def serve() -> web.AppRunner:
            app = web.Application()
            app.router.add_post("/send", self._send)
            runner = web.AppRunner(app, shutdown_timeout=0.5)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            self.url = f"http://127.0.0.1:{port}/send"
            return runner

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._runner = self._loop.run_until_complete(serve())
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._runner.cleanup())
            # A request still held by a scripted delay ends here, not as a "task destroyed" warning.
            pending = asyncio.all_tasks(self._loop)
            for task in pending:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.close()

        self._thread = threading.Thread(target=run, name="sms-gateway", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the stand-in SMS gateway did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def texts_to(self, phone: str) -> list[str]:
        """The texts received for ``phone`` (compared by digits), oldest first."""
        digits = re.sub(r"\D", "", phone)
        return [
            sms.body.get("text", "") for sms in self.received if re.sub(r"\D", "", str(sms.body.get("to"))) == digits
        ]

    def code_for(self, phone: str, timeout: float = 10.0) -> str:
        """The 4-digit code of the latest text to ``phone``, waiting for it to arrive."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            texts = self.texts_to(phone)
            if texts and (found := re.search(r"\b(\d{4})\b", texts[-1])):
                return found[1]
            time.sleep(0.05)
        raise AssertionError(f"no code texted to {phone} within {timeout} s; got {self.received}")


@pytest.fixture(name="gateway")
def gateway_fixture():
    """A stand-in SMS gateway for one test (``gateway``; a test module imports it to use it)."""
    running = SmsGateway().start()
    yield running
    running.stop()


@pytest.fixture
def sms_settings() -> dict:
    """More [sms] settings for a test (it parametrizes this name to change them)."""
    return {}


@pytest.fixture(name="sms_app")
def sms_app_fixture(config, gateway, sms_settings):
    """The real app with the demo data, texting through the HTTP sender to ``gateway`` (not started)."""
    from server.app import create_app
    from server.config import SmsConfig
    from server.demo import install_demo

    sms = SmsConfig(backend="http", url=gateway.url, backoff_s=0, **sms_settings)
    app = create_app(replace(config, sms=sms))
    app.on_startup.append(install_demo)
    return app


@pytest.fixture(name="sms_client")
async def sms_client_fixture(aiohttp_client, sms_app):
    """A client of ``sms_app`` on a loopback port."""
    return await aiohttp_client(sms_app)


async def request_code(
    client, phone: str = COMPANY_PHONE, lang: str = "es", email_index: int = 1, **client_options: Any
):
    """Ask the API for a texted code to ``phone`` (the human check answered), as the app does."""
    body = {"tax_id": ANDINA, "email_index": email_index, "phone": phone, **(await api_human(client))}
    return await client.post(f"/api/v1/registration/phone?lang={lang}", json=body, **client_options)
