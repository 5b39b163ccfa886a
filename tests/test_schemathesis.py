"""Schemathesis over the OpenAPI document the server serves: what the document says is what the server sends.

A real server process with the demo data on a loopback port; schemathesis reads the document from
``/api/v1/openapi.json`` as any client would and checks every answer: no server error, the status code and
the body as documented. Each role (a customer administrator, a staff administrator, an enrolled kiosk) gets
its own fresh server and tokens, so a run depends neither on the other roles nor on the order tests run in
(pytest-xdist may run the roles side by side). Generation is deterministic and bounded.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.helpers import api_token, bearer
from tests.stack import PortalUser, ServerProcess

ROLES = ("customer", "staff", "kiosk")
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"
MAX_EXAMPLES = 10
# Operations that end or change the caller's session get a token of their own, so the rest of the run
# keeps acting as the role whatever they did.
SESSION_CHANGING = ("/api/v1/auth/logout", "/api/v1/profiles/select", "/api/v1/password")
# Path parameter → the table whose real ids are offered for it half of the time (the rest are generated), so
# the run reaches real objects, the caller's and other companies', and not only "not found".
REAL_IDS = {
    r"^/api/v1/tickets/\{ticket_id\}": ("ticket_id", "tickets"),
    r"^/api/v1/helpdesk/tickets/\{ticket_id\}": ("ticket_id", "service_tickets"),
    r"^/api/v1/helpdesk/attachments/": ("attachment_id", "service_attachments"),
    r"^/api/v1/licences/\{serial_id\}": ("serial_id", "serials"),
    r"^/api/v1/licences/\{serial_id\}/machines/\{machine_id\}": ("machine_id", "machines"),
    r"^/api/v1/policies/\{policy_id\}": ("policy_id", "policies"),
    r"^/api/v1/company/users/\{user_id\}": ("user_id", "users"),
    r"^/api/v1/kiosks/\{kiosk_id\}": ("kiosk_id", "kiosks"),
    r"^/api/v1/conflicts/\{conflict_id\}": ("conflict_id", "conflicts"),
    r"^/api/v1/admin/users/\{user_id\}": ("user_id", "users"),
    r"^/api/v1/admin/registrations/\{user_id\}": ("user_id", "users"),
    r"^/api/v1/billing/companies/\{company_id\}": ("company_id", "companies"),
}


async def customer_token(client: aiohttp.ClientSession) -> str:
    """Carla of Andina acting as its customer administrator (tickets, helpdesk and the company's users)."""
    token = await api_token(client, "andina")
    profiles = await (await client.get("/api/v1/profiles", headers=bearer(token))).json()
    chosen = next(p["id"] for p in profiles["profiles"] if p["role"] == "customer_admin")
    resp = await client.post("/api/v1/profiles/select", json={"profile_id": chosen}, headers=bearer(token))
    assert resp.status == 200, await resp.text()
    return token


async def kiosk_token(client: aiohttp.ClientSession, url: str) -> str:
    """A kiosk the gate supervisor created in the portal, enrolled through the API."""
    supervisor = PortalUser(url)
    try:
        await supervisor.login("supervisor")
        code = await supervisor.create_kiosk("Garita Schemathesis")
    finally:
        await supervisor.close()
    resp = await client.post("/api/v1/gate/enrol", json={"enrol_code": code, "fingerprint": "st-box"})
    assert resp.status == 201, await resp.text()
    return (await resp.json())["token"]


async def role_token(client: aiohttp.ClientSession, url: str, role: str) -> str:
    if role == "staff":
        return await api_token(client, "admin")
    if role == "customer":
        return await customer_token(client)
    return await kiosk_token(client, url)


async def role_tokens(url: str, role: str) -> dict[str, str]:
    """Operation path → bearer token of ``role`` (``""``: the run's token; each session-changing operation of
    the portal has a token of its own)."""
    async with aiohttp.ClientSession(base_url=url) as client:
        paths = ("", *SESSION_CHANGING) if role != "kiosk" else ("",)
        return {path: await role_token(client, url, role) for path in paths}


def schemathesis_config(server: ServerProcess, tokens: dict[str, str]) -> dict:
    """The run's settings: a fixed seed, few examples per operation, real ids and codes mixed in."""
    dictionaries = {
        table: {"values": [row[0] for row in server.db_rows(f"SELECT id FROM {table}")] or [1]}
        for _param, table in REAL_IDS.values()
    }
    dictionaries["short_codes"] = {"values": [row[0] for row in server.db_rows("SELECT short_code FROM tickets")]}
    operations = [
        {"include-path-regex": path, "parameters": {f"path.{param}": {"dictionary": table, "probability": 0.5}}}
        for path, (param, table) in REAL_IDS.items()
    ]
    operations.append(
        {"include-path": "/api/v1/gate/redeem", "parameters": {"body.code": {"dictionary": "short_codes"}}}
    )
    operations += [
        {"include-path": path, "headers": {"Authorization": f"Bearer {token}"}}
        for path, token in tokens.items()
        if path
    ]
    return {
        "seed": 20261201,
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True},
        "headers": {"Authorization": f"Bearer {tokens['']}"},
        "dictionaries": dictionaries,
        "operations": operations,
    }


def toml_document(config: dict) -> str:
    """``config`` as TOML (JSON strings, numbers and arrays are valid TOML values)."""
    lines = [f"{key} = {json.dumps(value)}" for key, value in config.items() if not isinstance(value, dict | list)]
    for section in ("generation", "headers"):
        lines += [f"\n[{section}]"] + [f"{json.dumps(k)} = {json.dumps(v)}" for k, v in config[section].items()]
    for name, definition in config["dictionaries"].items():
        lines += [f"\n[dictionaries.{name}]", f"values = {json.dumps(definition['values'])}"]
    for operation in config["operations"]:
        lines.append("\n[[operations]]")
        for key, value in operation.items():
            lines.append(f"{key} = {toml_inline(value)}")
    return "\n".join(lines) + "\n"


def toml_inline(value: object) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_inline(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


@pytest.fixture
def served(tmp_path: Path, database_url: str) -> Iterator[ServerProcess]:
    """The demo server on each engine (``database_url``: SQLite's file, or a fresh PostgreSQL database)."""
    server = ServerProcess(tmp_path / "data", database_url=database_url).start()
    try:
        yield server
    finally:
        server.stop()


def run_schemathesis(server: ServerProcess, config_file: Path, *filters: str) -> subprocess.CompletedProcess:
    """``schemathesis run`` over the served document, as a developer would type it."""
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config_file), "--no-color", "run"]
    # A PDF's first print starts the renderer process: on a busy two-core box that took over schemathesis'
    # default 10 s once, reported as a network error although the answer came.
    command += [f"{server.url}/api/v1/openapi.json", "--checks", CHECKS, "--workers", "1", "--request-timeout", "30"]
    command += filters
    return subprocess.run(command, cwd=config_file.parent, capture_output=True, text=True, timeout=280)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("role", ROLES)
def test_api_answers_what_its_document_says(served: ServerProcess, role: str, tmp_path: Path) -> None:
    config_file = tmp_path / "schemathesis.toml"
    config_file.write_text(toml_document(schemathesis_config(served, asyncio.run(role_tokens(served.url, role)))))
    filters = ("--include-tag", "gate") if role == "kiosk" else ("--exclude-tag", "gate")
    result = run_schemathesis(served, config_file, *filters)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\nserver log:\n{served.log.read_text()[-6000:]}"
