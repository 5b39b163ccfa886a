"""Helpers that act like a person filling the portal's forms (parse the page, answer, submit)."""

from __future__ import annotations

import html
import re
from typing import Any

from gate_core.codes import normalize_code
from server.demo import DEMO_PASSWORD
from tests.dbaccess import db_rows

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
QUESTION_RE = re.compile(r'data-question="(\d+) \+ (\d+)"')
TOKEN_RE = re.compile(r'name="human_token" value="([^"]+)"')


def field_errors(page: str) -> dict[str, str]:
    """Field name → error text shown next to that field."""
    return {
        m[0]: html.unescape(m[1]).strip()
        for m in re.findall(r'<p class="error"[^>]*data-field="([a-z_]+)">⚠ ([^<]*)</p>', page)
    }


def alert_text(page: str) -> str:
    found = re.search(r'<div class="alert alert-\w+" role="(?:alert|status)"[^>]*>([^<]*)</div>', page)
    return html.unescape(found[1]).strip() if found else ""


async def get_form(client, path: str) -> tuple[str, dict[str, str]]:
    """Fetch a page; returns its HTML and the hidden fields a browser would send (CSRF, human check)."""
    resp = await client.get(path)
    page = await resp.text()
    return page, hidden_fields(page)


def hidden_fields(page: str) -> dict[str, str]:
    """The CSRF token and the answered human check of a form page, as a person would fill them."""
    hidden: dict[str, str] = {}
    if m := CSRF_RE.search(page):
        hidden["csrf_token"] = m[1]
    if (q := QUESTION_RE.search(page)) and (t := TOKEN_RE.search(page)):
        hidden["human_token"] = t[1]
        hidden["human_answer"] = str(int(q[1]) + int(q[2]))
    return hidden


async def submit(
    client,
    path: str,
    data: dict[str, Any],
    *,
    form_path: str | None = None,
    human: bool = True,
    allow_redirects: bool = True,
):
    """Load the form page, fill ``data`` and post it like a browser would."""
    _page, hidden = await get_form(client, form_path or path)
    if not human:
        hidden.pop("human_answer", None)
    payload = {**hidden, **data}
    return await client.post(path, data=payload, allow_redirects=allow_redirects)


async def login(client, username: str, password: str = DEMO_PASSWORD, language: str = "es", profile: str | None = None):
    resp = await submit(
        client, "/login", {"login": username, "password": password, "language": language}, allow_redirects=False
    )
    assert resp.status == 302, await resp.text()
    if profile is not None:
        await choose_profile(client, profile)
    return resp


async def choose_profile(client, profile: str) -> None:
    """Pick the profile whose company is ``profile`` on the profile page."""
    page, hidden = await get_form(client, "/profiles")
    match = re.search(
        rf'value="(\d+)"[^>]*>\s*<strong>[^<]*</strong> — <span class="company">{re.escape(profile)}', page
    )
    assert match, page
    await client.post("/profiles", data={**hidden, "profile_id": match[1]})


def count(config, table: str) -> int:
    return db_rows(config, f"SELECT COUNT(*) FROM {table}")[0][0]


# --- JSON API --------------------------------------------------------------------------------


async def api_human(client) -> dict[str, str]:
    """Answer the API's human check like a mobile app showing the question to a person would."""
    challenge = await (await client.get("/api/v1/human-check")).json()
    a, b = challenge["question"].split(" + ")
    return {"human_token": challenge["token"], "human_answer": str(int(a) + int(b))}


async def api_login(client, login: str, password: str = DEMO_PASSWORD, **extra: Any):
    body = {"login": login, "password": password, **(await api_human(client)), **extra}
    return await client.post("/api/v1/auth/login", json=body)


async def api_token(client, login: str, password: str = DEMO_PASSWORD) -> str:
    resp = await api_login(client, login, password)
    assert resp.status == 200, await resp.text()
    return (await resp.json())["token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def api_error(resp) -> dict[str, Any]:
    """The ``error`` object of an API answer, checking the documented shape on the way."""
    assert resp.content_type == "application/json", await resp.text()
    error = (await resp.json())["error"]
    assert set(error) == {"code", "message", "fields"}
    assert isinstance(error["code"], str) and isinstance(error["message"], str) and error["message"]
    assert isinstance(error["fields"], dict)
    return error


def as_codes(texts: list[str]) -> list[str]:
    """QR texts as the gate's parser takes them: a full code in either printed form (the QR carries the decimal
    one) becomes its canonical base 32 text, what the server issued; anything else stays as read."""
    return [normalize_code(text) or text for text in texts]
