"""Gate kiosks are machines on the operator's licence serial: the seam between licences and the gate.

Deactivating a kiosk's machine in the portal cuts the kiosk off at once: its revocation is written
in the same transaction as the deactivation, and the gate's in-memory token cache is told right
after the commit. (The gate area imports are local: the gate imports the licence service too.)
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aiohttp import web

from server.helpdesk import licences
from server.sql import Connection


def deactivate_machine(
    db: Connection,
    company_id: int | None,
    serial_id: int,
    machine_id: int,
    actor_id: int | None,
    now: datetime,
    quota: licences.DeactivationQuota,
) -> dict[str, Any]:
    """Deactivate a machine; a gate kiosk's machine also revokes the kiosk, in one transaction."""
    machine = licences.deactivate_machine(db, company_id, serial_id, machine_id, actor_id, now, quota)
    if machine["kiosk_id"]:
        from server.gate.kiosks import revoke_kiosk

        revoke_kiosk(db, machine["kiosk_id"], actor_id, now)
    return machine


def forget_kiosk_token(app: web.Application, machine: Mapping[str, Any]) -> None:
    """After the commit: the kiosk's cached token stops working on its very next call."""
    kiosk_id = machine.get("kiosk_id")
    if not kiosk_id:
        return
    from server.gate.kiosks import KIOSKS

    if KIOSKS in app:
        app[KIOSKS].revoke(kiosk_id)
