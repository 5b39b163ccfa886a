"""Migrations 9300–9399: where kiosks' live channels are, shared by the nodes (issue 15)."""

from __future__ import annotations

from server.migrations import migration, script
from server.sql import Connection


@migration(9300)
def kiosk_live_seen(db: Connection) -> None:
    """When a node last saw a kiosk's live channel open (its liveness flush, every few seconds).

    A kiosk's WebSocket is held by one node; the supervisor's kiosk list may be answered by another, which
    calls the kiosk connected while this time is recent (``server.gate.staff``).
    """
    script(db, "ALTER TABLE kiosks ADD COLUMN live_seen_at TEXT")
