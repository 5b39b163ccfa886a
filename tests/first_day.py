"""A terminal's first day as its people live it: the documented commands on an empty data folder
(``portgate-server init``, then the service), the portal in Chromium with one browser per person,
and the mail they get read from the ``folder`` mail backend's ``.eml`` files.

Nothing here reaches into the database: whatever a person needs (a link, a code) they read from a
page, a mail or a print.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import re
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

from playwright.async_api import Browser, Page, expect

from tests.browser import wait_until_healthy
from tests.stack import ROOT, ServerProcess

#: The installed commands, as an operator runs them (``pip install -e .`` put them beside Python).
BIN = Path(sys.executable).parent


class Terminal(ServerProcess):
    """One installation: its settings file, its data folder and its server process (stopped as any other)."""

    def __init__(self, root: Path, timezone: str) -> None:
        super().__init__(root / "var-lib-portgate")
        self.settings = root / "server.toml"
        self.settings.write_text(
            f'data_dir = "{self.data_dir}"\nport = {self.port}\ntimezone = "{timezone}"\n'
            f'base_url = "{self.url}"\n\n[mail]\nbackend = "folder"\n'
        )

    @staticmethod
    def command() -> str:
        """``portgate-server`` as installed beside this Python (``./portgate.sh test`` installs it)."""
        installed = BIN / "portgate-server"
        assert installed.exists(), f"{installed} is missing: install Portgate into this venv (./portgate.sh test)"
        return str(installed)

    def _env(self) -> dict[str, str]:
        """The operator's environment: only ``PORTGATE_CONFIG``, none of the test run's own settings."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PORTGATE_")}
        return {**env, "PORTGATE_CONFIG": str(self.settings)}

    def init(self, password: str, *options: str) -> subprocess.CompletedProcess[str]:
        """``portgate-server init`` with the password on standard input, as a provisioning tool runs it."""
        command = [self.command(), "init", "--data-dir", str(self.data_dir), *options]
        return subprocess.run(
            command, cwd=ROOT, env=self._env(), input=password + "\n", capture_output=True, text=True, timeout=60
        )

    def start(self) -> Terminal:
        """The service as the systemd unit starts it (no ``--demo``), once it answers ``/healthz``."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [self.command(), "--data-dir", str(self.data_dir)],
                cwd=ROOT,
                env=self._env(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_until_healthy(self.url, self.proc)
        except RuntimeError as exc:
            raise AssertionError(f"{exc}\n{self.log.read_text(errors='replace')[-3000:]}") from None
        return self

    async def mail_to(self, address: str, contains: str, timeout: float = 20.0) -> EmailMessage:
        """The first mail written to ``address`` whose text contains ``contains`` (delivery is a background job)."""
        folder = self.data_dir / "mail"
        deadline = time.monotonic() + timeout
        while True:
            for path in sorted(folder.glob("*.eml")) if folder.is_dir() else []:
                message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                if address.lower() in str(message["To"]).lower() and contains in message.get_content():
                    return message
            if time.monotonic() > deadline:
                raise AssertionError(f"no mail to {address} containing {contains!r} in {folder}")
            await asyncio.sleep(0.2)


def link_in(message: EmailMessage, path: str) -> str:
    """The link to ``path`` a mail carries, as a person would click it."""
    found = re.search(rf"https?://\S+{re.escape(path)}\S*", message.get_content())
    assert found, message.get_content()
    return found[0]


class Person:
    """Someone at their own browser (own cookies) on the portal."""

    def __init__(self, page: Page) -> None:
        self.page = page

    @classmethod
    async def at(cls, browser: Browser, url: str) -> Person:
        context = await browser.new_context(base_url=url, viewport={"width": 1280, "height": 900}, locale="es-EC")
        context.set_default_timeout(15_000)
        return cls(await context.new_page())

    async def answer_human_check(self) -> None:
        """Read the small sum the form asks and type its result."""
        box = self.page.locator("#f-human_answer")
        a, b = (await box.get_attribute("data-question")).split(" + ")
        await box.fill(str(int(a) + int(b)))

    async def fill(self, values: dict[str, str]) -> None:
        """Type each value into the form field of that name (the portal's fields are ``#f-<name>``)."""
        for name, value in values.items():
            await self.page.fill(f"#f-{name}", value)

    async def sign_in(self, login: str, password: str) -> None:
        """Sign in in Spanish and enter with the first (here: only) profile."""
        await self.page.goto("/login")
        await self.page.select_option("#f-language", "es")
        await self.fill({"login": login, "password": password})
        await self.answer_human_check()
        await self.page.click("#submit")
        await expect(self.page).to_have_url(re.compile(r"/profiles"))
        await self.page.click("#enter")
        await expect(self.page).to_have_url(re.compile(r"/home$"))

    async def choose_password(self, link: str, password: str) -> None:
        """Follow a mailed set-password link and choose ``password``."""
        await self.page.goto(link)
        await self.fill({"new_password": password, "new_password_confirm": password})
        await self.page.click("#submit")
        # The result is shown once on the sign-in page it redirects to (Refresh does not post the link again).
        await expect(self.page).to_have_url(re.compile(r"/login$"))
        await expect(self.page.locator(".alert-success")).to_have_text(
            "Su contraseña ha sido guardada. Ya puede ingresar."
        )

    async def open_from_menu(self, href: str) -> None:
        """Open a page from the side menu: it must be one this person's profile offers."""
        await self.page.locator(f".sidemenu a[href='{href}']").click()
        await expect(self.page).to_have_url(re.compile(re.escape(href)))
        await self.page.wait_for_load_state()  # its scripts too: a field typed into before them is missed
