"""Migrations 9200–9299: the sync epoch, which tells kiosks the database was put back (issue 15)."""

from __future__ import annotations

import secrets

from server.migrations import migration, script
from server.sql import Connection


@migration(9200)
def sync_epoch(db: Connection) -> None:
    """One random id for this database's history of sync numbers, sent with every sync page.

    A restore puts an older backup in place: its counter is behind the cursors of the kiosks that
    synced after the backup, so those would never ask for the changes made after the restore. A
    restore gives the database a new epoch (server.gate.sync.renew_epoch); a kiosk that sees an
    epoch other than its own drops its cached tickets and syncs from 0. A table of its own, not a
    column of ``sync_counter``: the counter's row is written by every change, this one only here and
    by a restore.
    """
    script(db, "CREATE TABLE sync_epoch (id INTEGER PRIMARY KEY CHECK (id = 1), epoch TEXT NOT NULL)")
    db.execute("INSERT INTO sync_epoch (id, epoch) VALUES (1, ?)", (secrets.token_hex(16),))
