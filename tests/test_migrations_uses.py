"""Upgrading a database with uses in it (migrations 22 and 24): nothing lost, nothing skipped by sync."""

from __future__ import annotations

from server.db import connect
from server.gate.redeem import _record_use
from server.gate.sync import sync_page
from server.migrations import MIGRATIONS, apply_migrations


def _database_without(path, monkeypatch, number: int, tickets: int):  # noqa: ANN001, ANN202
    """A database migrated up to all but migration ``number``, with tickets 1..``tickets``
    (sync numbers 1..``tickets``; their company, itinerary and so on are not there)."""
    db = connect(path)
    with monkeypatch.context() as patch:
        patch.delitem(MIGRATIONS, number)
        assert number not in apply_migrations(db)
    db.execute("PRAGMA foreign_keys=OFF")  # only the rows the tests look at
    for ticket_id in range(1, tickets + 1):
        db.execute(
            "INSERT INTO tickets (id, company_id, generation_id, itinerary_id, key_id, short_code, sync_seq, "
            "created_at) VALUES (?, 1, 1, 1, 1, ?, ?, '2026-11-24T08:00:00+00:00')",
            (ticket_id, str(ticket_id) * 20, ticket_id),
        )
    return db


def test_uses_recorded_before_migration_22_stay_readable_after_it(tmp_path, monkeypatch):
    db = _database_without(tmp_path / "old.db", monkeypatch, 22, tickets=2)
    try:
        db.execute("INSERT INTO kiosks (id, name, created_at) VALUES (7, 'Garita 7', '2026-11-24T07:00:00+00:00')")
        db.execute(
            "INSERT INTO ticket_uses (ticket_id, scan_id, kiosk_id, used_at) "
            "VALUES (1, 'scan-0001', 7, '2026-11-24T09:00:00.000+00:00')"
        )
        db.execute("UPDATE tickets SET used_at = '2026-11-24T09:00:00.000+00:00' WHERE id = 1")
        db.execute("PRAGMA foreign_keys=ON")

        assert apply_migrations(db) == [22]

        rows = db.execute("SELECT id, used_at, used_scan_id, used_kiosk_id FROM tickets ORDER BY id").fetchall()
        assert rows == [(1, "2026-11-24T09:00:00.000+00:00", "scan-0001", 7), (2, None, None, None)]
        assert db.execute("SELECT ticket_id, scan_id, kiosk_id, used_at FROM ticket_uses").fetchall() == [
            (1, "scan-0001", 7, "2026-11-24T09:00:00.000+00:00")
        ]
    finally:
        db.conn.close()


def test_tickets_used_before_migration_24_still_sync_by_their_moved_number(tmp_path, monkeypatch):
    db = _database_without(tmp_path / "old.db", monkeypatch, 24, tickets=3)
    try:
        # Used the old way: the use moved the ticket's sync number (to 4).
        db.execute("UPDATE tickets SET used_at = '2026-11-24T09:00:00.000+00:00', sync_seq = 4 WHERE id = 1")
        db.execute("INSERT OR REPLACE INTO sync_counter (id, value) VALUES (1, 4)")
        db.execute("PRAGMA foreign_keys=ON")

        assert apply_migrations(db) == [24]
        db.execute("BEGIN IMMEDIATE")
        _record_use(db, 2, "scan-after-24", None, "2026-11-24T10:00:00.000+00:00")  # the new way: number 5
        db.execute("COMMIT")

        page = sync_page(db, 3, 10)
        assert [(row[0], row[7] is not None, row[-1]) for row in page["tickets"]] == [(1, True, 4), (2, True, 5)]
        assert page["cursor"] == 5 and not page["has_more"]
    finally:
        db.conn.close()
