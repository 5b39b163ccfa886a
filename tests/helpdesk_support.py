"""Shared steps of the helpdesk and licence tests: tokens with a chosen profile, serials, tickets."""

from __future__ import annotations

import struct
import uuid
import zlib
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from tests.helpers import api_token, bearer, db_rows

ANDINA = "0991234567001"
PACIFICO = "1790012345001"
TERMINAL = "0990000001001"
ANDINA_PORTAL_SERIAL = "8092589D-737B-4742-BCD3-265E11BD29B9"
PACIFICO_SERIAL = "BFA2B89F-8705-4784-BD75-538375787B6B"


def png_bytes(width: int = 4, height: int = 4) -> bytes:
    """A real (tiny, red) PNG image, as a screenshot would be."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xc8\x1e\x1e" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


async def token_as(client, login: str, role: str | None = None) -> dict[str, str]:
    """Bearer headers for ``login`` acting with the profile ``role`` (when the user holds several)."""
    token = await api_token(client, login)
    # English messages: the tests read our msgids, whatever the Spanish catalog says.
    headers = {**bearer(token), "Accept-Language": "en"}
    if role:
        profiles = (await (await client.get("/api/v1/profiles", headers=headers)).json())["profiles"]
        chosen = next(p for p in profiles if p["role"] == role)
        resp = await client.post("/api/v1/profiles/select", json={"profile_id": chosen["id"]}, headers=headers)
        assert resp.status == 200, await resp.text()
    return headers


def company_id(config, tax_id: str) -> int:
    return db_rows(config, "SELECT id FROM companies WHERE tax_id = ?", (tax_id,))[0][0]


def serial_id(config, serial: str) -> int:
    return db_rows(config, "SELECT id FROM serials WHERE serial = ?", (serial,))[0][0]


def policy_of(config, serial: str) -> int:
    return db_rows(
        config,
        "SELECT p.id FROM policies p JOIN serials s ON s.id = p.serial_id WHERE s.serial = ? "
        "ORDER BY p.valid_until DESC LIMIT 1",
        (serial,),
    )[0][0]


async def new_serial(
    client,
    admin: dict[str, str],
    config,
    tax_id: str,
    *,
    max_machines: int = 2,
    max_open_tickets: int = 2,
    days: int = 100,
    system: str | None = None,
) -> dict[str, Any]:
    """A fresh serial with one policy, made by the administrator through the API."""
    today = date.today()
    resp = await client.post(
        "/api/v1/licences",
        json={
            "company_id": company_id(config, tax_id),
            "system": system or f"Test System {uuid.uuid4().hex[:6]}",
            "description": "Test licence",
            "valid_until": (today + timedelta(days=days)).isoformat(),
            "max_machines": max_machines,
            "max_open_tickets": max_open_tickets,
        },
        headers=admin,
    )
    assert resp.status == 201, await resp.text()
    serial = await resp.json()
    resp = await client.post(
        "/api/v1/policies",
        json={
            "number": f"POL-T-{uuid.uuid4().hex[:8]}",
            "serial_id": serial["id"],
            "description": "Test policy",
            "registered_on": (today + timedelta(days=days - 365)).isoformat(),
            "valid_until": (today + timedelta(days=days)).isoformat(),
        },
        headers=admin,
    )
    assert resp.status == 201, await resp.text()
    serial["policy_id"] = (await resp.json())["id"]
    return serial


def ticket_body(policy_id: int, email: str, **changes: Any) -> dict[str, Any]:
    body = {
        "policy_id": policy_id,
        "area": "technical_support",
        "subject": "El sistema no abre",
        "email": email,
        "email_confirm": email,
        "phone": "+593 99 123 4567",
        "phone_confirm": "+593991234567",
        "contact_hours": "L-V 9:00-13:00",
        "description": "Al abrir el sistema aparece un error.\nAdjunto captura.",
    }
    body.update(changes)
    return body


async def open_ticket(client, headers: dict[str, str], policy_id: int, email: str, **changes: Any):
    return await client.post("/api/v1/helpdesk/tickets", json=ticket_body(policy_id, email, **changes), headers=headers)


def stored_files(config) -> list[Path]:
    folder = Path(config.data_dir) / "attachments"
    return sorted(folder.iterdir()) if folder.exists() else []
