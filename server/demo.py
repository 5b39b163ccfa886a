"""Demo data for ``portgate-server --demo``: a port operator, two customers, a user for every role.

Idempotent: running it on a data folder that already has the demo changes nothing.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from server.accounts.service import now_iso
from server.db import scalar
from server.security import hash_password
from server.web import DB

log = logging.getLogger(__name__)

DEMO_PASSWORD = "demo2026pass"

COMPANIES = [
    ("0990000001001", "Terminal Portuaria Demo S.A.", "operator", ["operaciones@terminal.example"]),
    ("0991234567001", "Exportadora Andina S.A.", "customer", ["logistica@andina.example", "jefe@andina.example"]),
    ("1790012345001", "Importadora del Pacífico Cía. Ltda.", "customer", ["compras@pacifico.example"]),
]

# user name, full name, e-mail, [(company tax id, role), ...]
USERS = [
    ("admin", "Ana Admin", "admin@terminal.example", [("0990000001001", "admin")]),
    ("facturacion", "Bruno Billing", "billing@terminal.example", [("0990000001001", "billing_clerk")]),
    ("operaciones", "Olga Operations", "ops@terminal.example", [("0990000001001", "operations")]),
    ("supervisor", "Sergio Supervisor", "gate@terminal.example", [("0990000001001", "gate_supervisor")]),
    ("mesa", "Helena Helpdesk", "helpdesk@terminal.example", [("0990000001001", "helpdesk_agent")]),
    (
        "andina",
        "Carla Andina",
        "carla@andina.example",
        [("0991234567001", "customer_admin"), ("0991234567001", "customer")],
    ),
    ("pacifico", "Pedro Pacífico", "pedro@pacifico.example", [("1790012345001", "customer")]),
    ("agente", "Marta Multi", "marta@agencia.example", [("0991234567001", "customer"), ("1790012345001", "customer")]),
]


def seed_accounts(db: Any) -> bool:
    """Insert the demo companies and users; returns False when they were already there."""
    if scalar(db, "SELECT 1 FROM users WHERE username = 'admin'"):
        return False
    ids = {}
    for tax_id, name, kind, emails in COMPANIES:
        ids[tax_id] = db.execute(
            "INSERT INTO companies (tax_id, name, emails, phone, kind, in_registry, created_at) "
            "VALUES (?, ?, ?, '+593 4 000 0000', ?, 1, ?)",
            (tax_id, name, json.dumps(emails), kind, now_iso()),
        ).lastrowid
    password_hash = hash_password(DEMO_PASSWORD)
    for username, full_name, email, profiles in USERS:
        user_id = db.execute(
            "INSERT INTO users (username, email, full_name, phone, password_hash, status, language, created_at) "
            "VALUES (?, ?, ?, '+593990000000', ?, 'active', 'es', ?)",
            (username, email, full_name, password_hash, now_iso()),
        ).lastrowid
        for tax_id, role in profiles:
            db.execute(
                "INSERT INTO profiles (user_id, company_id, role) VALUES (?, ?, ?)", (user_id, ids[tax_id], role)
            )
    return True


SERVICES = [
    ("RET-CARGA", "Retiro de carga", "Cargo pickup"),
    ("ENT-CONT", "Entrega de contenedor", "Container delivery"),
    ("RET-VACIO", "Retiro de contenedor vacío", "Empty container pickup"),
]


def seed_tickets(db: Any, keys: Any) -> bool:
    """Services, itineraries around today, confirmed purchases and a few generated tickets."""
    from server.tickets import service as svc

    if scalar(db, "SELECT COUNT(*) FROM services"):
        return False
    for code, name_es, name_en in SERVICES:
        svc.save_service(db, {"code": code, "name_es": name_es, "name_en": name_en})
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)

    def itinerary(vessel: str, voyage: str, eta_days: float, window_days: tuple[float, float]) -> int:
        values = {
            "vessel": vessel,
            "voyage": voyage,
            "berth": "M1",
            "eta": _iso(now + timedelta(days=eta_days)),
            "etd": _iso(now + timedelta(days=eta_days + 2)),
            "valid_from": _iso(now + timedelta(days=window_days[0])),
            "valid_until": _iso(now + timedelta(days=window_days[1])),
        }
        return svc.save_itinerary(db, values)

    open_now = itinerary("MSC Guayaquil", "2611E", 0, (-1, 6))
    itinerary("Maersk Manta", "612W", 3, (2, 9))
    itinerary("CMA CGM Salinas", "0450S", -20, (-21, -15))
    andina = scalar(db, "SELECT id FROM companies WHERE tax_id = '0991234567001'")
    pacifico = scalar(db, "SELECT id FROM companies WHERE tax_id = '1790012345001'")
    for company_id, quantity, reference, confirm in (
        (andina, 20, "VEN-000101", True),
        (pacifico, 10, "VEN-000102", True),
        (pacifico, 5, "VEN-000103", False),
    ):
        purchase_id = svc.record_purchase(db, {"company_id": company_id, "quantity": quantity, "reference": reference})
        if confirm:
            svc.confirm_purchase(db, purchase_id)
    services = [r[0] for r in db.execute("SELECT id FROM services ORDER BY id LIMIT 2").fetchall()]
    result = svc.generate_tickets(
        db, keys, andina, None, {"quantity": 6, "itinerary_id": open_now, "services": services}, now
    )
    ticket_ids = [
        r[0]
        for r in db.execute(
            "SELECT id FROM tickets WHERE generation_id = ? ORDER BY id", (result["generation_id"],)
        ).fetchall()
    ]
    for ticket_id in ticket_ids[:4]:
        svc.print_ticket(db, andina, ticket_id)
    return True


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="minutes")


SEEDERS = [seed_accounts]


async def install_demo(app: web.Application) -> None:
    from server.tickets import KEYS

    created = False
    for seeder in SEEDERS:
        created = await app[DB].write(seeder) or created
    created = await app[DB].write(seed_tickets, app[KEYS]) or created
    if created:
        log.info(
            "demo data installed; every demo user's password is %s (users: %s)",
            DEMO_PASSWORD,
            ", ".join(u[0] for u in USERS),
        )
