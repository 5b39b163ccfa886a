"""Helpers for the phone tests: another phone on the same app, the app's JSON API of a running server,
signing in on a phone, a printed ticket of the demo data."""

from __future__ import annotations

import contextlib
import json
import re
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
from playwright.sync_api import expect

from server.demo import DEMO_PASSWORD
from tests.browser import answer_human_check
from tests.dbaccess import db_rows


@contextlib.asynccontextmanager
async def another_phone(client) -> AsyncIterator[aiohttp.ClientSession]:
    """A browser of its own (no cookies of ``client``'s) talking to the same server, paths as ``client`` takes."""
    jar = aiohttp.CookieJar(unsafe=True)  # the test server is an IP address: keep its cookies as a browser does
    async with aiohttp.ClientSession(base_url=str(client.make_url("/")), cookie_jar=jar) as session:
        yield session


def portal_api(url: str, login: str, company: str) -> Callable[..., Any]:
    """The JSON API of a running server as the app uses it: signed in as ``login`` with ``company``'s profile.

    Returns ``call(method, path, body=None)`` answering the decoded JSON.
    """

    def call(method: str, path: str, body: dict | None = None, token: str = "") -> Any:
        request = urllib.request.Request(
            url + path,
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})},
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            return json.loads(resp.read())

    check = call("GET", "/api/v1/human-check")
    a, b = check["question"].split(" + ")
    human = {"human_token": check["token"], "human_answer": str(int(a) + int(b))}
    token = call("POST", "/api/v1/auth/login", {"login": login, "password": DEMO_PASSWORD, **human})["token"]
    profiles = call("GET", "/api/v1/profiles", token=token)["profiles"]
    chosen = next(p for p in profiles if p["company_name"] == company)
    call("POST", "/api/v1/profiles/select", {"profile_id": chosen["id"]}, token)
    return lambda method, path, body=None: call(method, path, body, token)


def printed_ticket(database: str | Path, tax_id: str = "0991234567001") -> int:
    """A printed, live ticket of a company in a running demo server (``database``: its ``db_url``)."""
    return db_rows(
        database,
        "SELECT t.id FROM tickets t JOIN companies c ON c.id = t.company_id WHERE c.tax_id = ? "
        "AND t.printed_at IS NOT NULL AND t.deleted_at IS NULL AND t.used_at IS NULL ORDER BY t.id DESC",
        (tax_id,),
    )[0][0]


def sign_in_on_the_phone(page, login: str, company: str) -> None:
    """Sign in on the portal's login page, tapping as a finger does, with ``company``'s profile."""
    page.goto("/login")
    page.fill("#f-login", login)
    page.fill("#f-password", DEMO_PASSWORD)
    answer_human_check(page)
    page.locator("#submit").tap()
    expect(page).to_have_url(re.compile(r"/profiles"))
    page.locator("label.profile-option", has_text=company).first.tap()
    page.locator("#enter").tap()
    expect(page).to_have_url(re.compile(r"/home$"))
