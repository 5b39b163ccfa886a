"""Demo data for ``portgate-server --demo``: a port operator, two customers, a user for every role.

Idempotent: running it on a data folder that already has the demo changes nothing.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from server.accounts.audit import stored_time
from server.db import scalar
from server.security import hash_password
from server.web import CONFIG, DB

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


def seed_accounts(db: Any, now: datetime) -> bool:
    """Insert the demo companies and users; returns False when they were already there."""
    if scalar(db, "SELECT 1 FROM users WHERE username = 'admin'"):
        return False
    ids = {}
    for tax_id, name, kind, emails in COMPANIES:
        ids[tax_id] = db.execute(
            "INSERT INTO companies (tax_id, name, emails, phone, kind, in_registry, created_at) "
            "VALUES (?, ?, ?, '+593 4 000 0000', ?, 1, ?) RETURNING id",
            (tax_id, name, json.dumps(emails), kind, stored_time(now)),
        ).fetchone()[0]
    password_hash = hash_password(DEMO_PASSWORD)
    for username, full_name, email, profiles in USERS:
        user_id = db.execute(
            "INSERT INTO users (username, email, full_name, phone, password_hash, status, language, created_at) "
            "VALUES (?, ?, ?, '+593990000000', ?, 'active', 'es', ?) RETURNING id",
            (username, email, full_name, password_hash, stored_time(now)),
        ).fetchone()[0]
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


def seed_tickets(db: Any, keys: Any, now: datetime) -> bool:
    """Services, itineraries around today, confirmed purchases and a few generated tickets."""
    from server.tickets import service as svc

    if scalar(db, "SELECT COUNT(*) FROM services"):
        return False
    for code, name_es, name_en in SERVICES:
        svc.save_service(db, {"code": code, "name_es": name_es, "name_en": name_en}, now=now)
    hour = now.replace(minute=0, second=0, microsecond=0)

    def itinerary(vessel: str, voyage: str, eta_days: float, window_days: tuple[float, float]) -> int:
        values = {
            "vessel": vessel,
            "voyage": voyage,
            "berth": "M1",
            "eta": _iso(hour + timedelta(days=eta_days)),
            "etd": _iso(hour + timedelta(days=eta_days + 2)),
            "valid_from": _iso(hour + timedelta(days=window_days[0])),
            "valid_until": _iso(hour + timedelta(days=window_days[1])),
        }
        return svc.save_itinerary(db, values, now=now)

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
        purchase_id = svc.record_purchase(
            db, {"company_id": company_id, "quantity": quantity, "reference": reference}, now=now
        )
        if confirm:
            svc.confirm_purchase(db, purchase_id, now=now)
    services = [r[0] for r in db.execute("SELECT id FROM services ORDER BY id LIMIT 2").fetchall()]
    result = svc.generate_tickets(
        db, keys, andina, None, {"quantity": 6, "itinerary_id": open_now, "services": services}, hour
    )
    ticket_ids = [
        r[0]
        for r in db.execute(
            "SELECT id FROM tickets WHERE generation_id = ? ORDER BY id", (result["generation_id"],)
        ).fetchall()
    ]
    for ticket_id in ticket_ids[:4]:
        svc.print_ticket(db, andina, ticket_id, now=now)
    return True


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="minutes")


# tax id, serial, system, description, days of validity left, max machines, max open tickets,
# machines [(name, fingerprint, active)]
HELPDESK_SERIALS = [
    (
        "0991234567001",
        "8092589D-737B-4742-BCD3-265E11BD29B9",
        "Portgate Portal",
        "Portgate Portal Licencia Anual - Renovación",
        340,
        3,
        2,
        [
            ("ANDINA-CONTAB-01", "FP-A1-0001", True),
            ("ANDINA-GERENCIA", "FP-A1-0002", True),
            ("ANDINA-OLD", "FP-A1-0003", False),
        ],
    ),
    (
        "0991234567001",
        "4DF7800E-320A-47D6-9032-2ABE643B8E99",
        "Portgate Mobile",
        "Portgate Mobile Licencia Anual",
        120,
        5,
        3,
        [("Tablet bodega", "FP-A2-0001", True)],
    ),
    (
        "0991234567001",
        "B6774289-5604-41DD-962A-4066C27092D3",
        "Portgate Portal",
        "Portgate Portal Licencia Anual",
        -10,
        2,
        1,
        [],
    ),
    (
        "1790012345001",
        "BFA2B89F-8705-4784-BD75-538375787B6B",
        "Portgate Portal",
        "Portgate Portal Licencia Anual",
        200,
        2,
        1,
        [("PACIFICO-PC1", "FP-P1-0001", True)],
    ),
    (
        "0990000001001",
        "A7E3C0DE-6A7E-4B1D-9000-0990000001001",
        "Portgate Gate",
        "Portgate Gate: agentes de garita",
        365,
        10,
        2,
        [],
    ),
]


def seed_helpdesk(db: Any, now: datetime) -> bool:
    """Licence serials with machines and policies, and two finished service tickets of Andina."""
    if scalar(db, "SELECT COUNT(*) FROM serials"):
        return False
    now = now.replace(microsecond=0)
    policy_of = _seed_licences(db, now)
    _seed_service_tickets(db, policy_of["8092589D-737B-4742-BCD3-265E11BD29B9"], now)
    return True


def _seed_licences(db: Any, now: datetime) -> dict[str, int]:
    """The serials of HELPDESK_SERIALS with their machines and one policy each; returns serial → policy id."""
    from server.helpdesk import licences, policies

    today = now.date()
    policy_of = {}
    for number, (tax_id, serial, system, description, days, machines, open_tickets, boxes) in enumerate(
        HELPDESK_SERIALS, 1
    ):
        company_id = scalar(db, "SELECT id FROM companies WHERE tax_id = ?", (tax_id,))
        serial_id = licences.save_serial(
            db,
            {
                "serial_id": None,
                "company_id": company_id,
                "serial": serial,
                "system": system,
                "description": description,
                "valid_until": (today + timedelta(days=days)).isoformat(),
                "max_machines": machines,
                "max_open_tickets": open_tickets,
                "suspended": False,
            },
            None,
            now - timedelta(days=30),
        )
        policy_of[serial] = policies.save_policy(
            db,
            {
                "number": f"POL-{2026000 + number}",
                "serial_id": serial_id,
                "description": description,
                "registered_on": (today + timedelta(days=days - 365)).isoformat(),
                "valid_until": (today + timedelta(days=days)).isoformat(),
            },
            None,
            now,
        )
        for name, fingerprint, active in boxes:
            machine = licences.activate_machine(
                db, company_id, serial_id, {"name": name, "fingerprint": fingerprint}, None, now - timedelta(days=60)
            )
            if not active:
                licences.deactivate_machine(
                    db,
                    company_id,
                    serial_id,
                    machine["id"],
                    None,
                    now - timedelta(days=40),
                    licences.DeactivationQuota(3, 30),
                )
    return policy_of


def _seed_service_tickets(db: Any, policy_id: int, now: datetime) -> None:
    """Two of Andina's service tickets on ``policy_id``, answered and closed."""
    from server.helpdesk import tickets as service_tickets

    andina = scalar(db, "SELECT id FROM companies WHERE tax_id = '0991234567001'")
    carla = {
        "id": scalar(db, "SELECT id FROM users WHERE username = 'andina'"),
        "full_name": "Carla Andina",
        "language": "es",
    }
    agent = {"id": scalar(db, "SELECT id FROM users WHERE username = 'mesa'"), "full_name": "Helena Helpdesk"}
    for hours_ago, subject, area, answer in (
        (20, "Requiere apoyo con activación de licencia.", "technical_support", "Listo: la licencia quedó activada."),
        (125, "Cotización de licencias adicionales.", "sales", "Le enviamos la cotización a su correo."),
    ):
        opened = now - timedelta(hours=hours_ago)
        values = {
            "policy_id": policy_id,
            "area": area,
            "subject": subject,
            "email": "carla@andina.example",
            "phone": "+593990000000",
            "contact_hours": "L-V 9:00-13:00",
            "description": subject,
        }
        ticket = service_tickets.open_ticket(db, andina, carla, values, [], opened)
        service_tickets.add_reply(db, None, ticket["id"], agent, "agent", answer, [], opened + timedelta(hours=2))
        service_tickets.finish(db, ticket["id"], agent["id"], "closed", opened + timedelta(hours=3))


async def install_demo(app: web.Application) -> None:
    """Seed the demo's accounts, gate tickets and helpdesk, each once, around the time of the call."""
    from server.tickets import KEYS

    now = datetime.now(app[CONFIG].zone)  # the terminal's time: helpdesk numbers are stamped in it
    created = await app[DB].write(seed_accounts, now)
    created = await app[DB].write(seed_tickets, app[KEYS], now) or created
    created = await app[DB].write(seed_helpdesk, now) or created
    if created:
        log.info(
            "demo data installed; every demo user's password is %s (users: %s)",
            DEMO_PASSWORD,
            ", ".join(u[0] for u in USERS),
        )
