"""Migrations 1–3: the first schema (accounts, gate tickets, the kiosk protocol)."""

from __future__ import annotations

from server.migrations import migration, script
from server.sql import Connection


@migration(1)
def accounts(db: Connection) -> None:
    script(
        db,
        """
        CREATE TABLE companies (
            id INTEGER PRIMARY KEY,
            tax_id TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            emails TEXT NOT NULL DEFAULT '',
            phone TEXT NOT NULL DEFAULT '',
            kind TEXT NOT NULL DEFAULT 'customer',
            in_registry INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL
        );
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            username TEXT NOT NULL UNIQUE,
            email TEXT NOT NULL UNIQUE,
            full_name TEXT NOT NULL,
            phone TEXT NOT NULL DEFAULT '',
            password_hash TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',
            language TEXT NOT NULL DEFAULT 'es',
            failed_logins INTEGER NOT NULL DEFAULT 0,
            locked_until REAL NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            decided_at TEXT,
            decided_by INTEGER
        );
        CREATE TABLE profiles (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            company_id INTEGER NOT NULL REFERENCES companies(id),
            role TEXT NOT NULL,
            UNIQUE (user_id, company_id, role)
        );
        CREATE INDEX profiles_company ON profiles(company_id);
        CREATE TABLE sessions (
            token_hash TEXT PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            profile_id INTEGER REFERENCES profiles(id) ON DELETE SET NULL,
            csrf_token TEXT NOT NULL,
            kind TEXT NOT NULL DEFAULT 'web',
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL
        );
        CREATE INDEX sessions_user ON sessions(user_id);
        CREATE TABLE login_failures (
            id INTEGER PRIMARY KEY,
            address TEXT NOT NULL,
            at REAL NOT NULL
        );
        CREATE INDEX login_failures_address ON login_failures(address, at);
        CREATE TABLE one_time_tokens (
            token_hash TEXT PRIMARY KEY,
            purpose TEXT NOT NULL,
            user_id INTEGER,
            company_id INTEGER,
            email TEXT NOT NULL DEFAULT '',
            phone TEXT NOT NULL DEFAULT '',
            code_hash TEXT NOT NULL DEFAULT '',
            attempts INTEGER NOT NULL DEFAULT 0,
            expires_at REAL NOT NULL,
            used_at REAL
        );
        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            user_id INTEGER,
            company_id INTEGER,
            event TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '',
            address TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX audit_log_at ON audit_log(at);
        """,
    )


@migration(2)
def gate_tickets(db: Connection) -> None:
    """Catalogue, purchases, tickets and the kiosk protocol's tables.

    ``sync_seq`` columns take values from the single ``sync_counter`` row, bumped on every change a
    kiosk must learn about, so a kiosk's delta sync is ``WHERE sync_seq > cursor ORDER BY sync_seq``.
    """
    script(
        db,
        """
        CREATE TABLE sync_counter (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
        INSERT INTO sync_counter (id, value) VALUES (1, 0);
        CREATE TABLE itineraries (
            id INTEGER PRIMARY KEY,
            vessel TEXT NOT NULL,
            voyage TEXT NOT NULL,
            eta TEXT NOT NULL,
            etd TEXT NOT NULL,
            valid_from TEXT NOT NULL,
            valid_until TEXT NOT NULL,
            berth TEXT NOT NULL DEFAULT '',
            active INTEGER NOT NULL DEFAULT 1,
            sync_seq INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            UNIQUE (vessel, voyage)
        );
        CREATE INDEX itineraries_sync ON itineraries(sync_seq);
        CREATE TABLE services (
            id INTEGER PRIMARY KEY,
            code TEXT NOT NULL UNIQUE,
            name_es TEXT NOT NULL,
            name_en TEXT NOT NULL,
            active INTEGER NOT NULL DEFAULT 1
        );
        CREATE TABLE purchases (
            id INTEGER PRIMARY KEY,
            company_id INTEGER NOT NULL REFERENCES companies(id),
            quantity INTEGER NOT NULL CHECK (quantity > 0),
            reference TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',
            recorded_by INTEGER,
            recorded_at TEXT NOT NULL,
            confirmed_by INTEGER,
            confirmed_at TEXT,
            UNIQUE (company_id, reference)
        );
        CREATE INDEX purchases_company ON purchases(company_id, status);
        CREATE TABLE balances (
            company_id INTEGER PRIMARY KEY REFERENCES companies(id),
            confirmed INTEGER NOT NULL DEFAULT 0,
            active_tickets INTEGER NOT NULL DEFAULT 0,
            CHECK (active_tickets <= confirmed)
        );
        CREATE TABLE generations (
            id INTEGER PRIMARY KEY,
            transaction_no TEXT NOT NULL UNIQUE,
            company_id INTEGER NOT NULL REFERENCES companies(id),
            itinerary_id INTEGER NOT NULL REFERENCES itineraries(id),
            quantity INTEGER NOT NULL,
            services TEXT NOT NULL,
            created_by INTEGER,
            created_at TEXT NOT NULL
        );
        CREATE INDEX generations_company ON generations(company_id, itinerary_id);
        CREATE TABLE signing_keys (
            key_id INTEGER PRIMARY KEY,
            private_key BLOB NOT NULL,
            public_key BLOB NOT NULL,
            created_at TEXT NOT NULL,
            retired_at TEXT
        );
        CREATE TABLE tickets (
            id INTEGER PRIMARY KEY,
            company_id INTEGER NOT NULL REFERENCES companies(id),
            generation_id INTEGER NOT NULL REFERENCES generations(id),
            itinerary_id INTEGER NOT NULL REFERENCES itineraries(id),
            key_id INTEGER NOT NULL,
            short_code TEXT NOT NULL UNIQUE,
            printed_at TEXT,
            print_count INTEGER NOT NULL DEFAULT 0,
            deleted_at TEXT,
            used_at TEXT,
            sync_seq INTEGER NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX tickets_company_itinerary ON tickets(company_id, itinerary_id, id);
        CREATE INDEX tickets_sync ON tickets(sync_seq);
        CREATE TABLE kiosks (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            gate TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL DEFAULT 'pending',
            token_hash TEXT UNIQUE,
            enrol_code_hash TEXT,
            enrol_expires_at REAL,
            fingerprint TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            enrolled_at TEXT,
            revoked_at TEXT,
            last_seen_at TEXT,
            last_sync_seq INTEGER NOT NULL DEFAULT 0,
            pending_uploads INTEGER NOT NULL DEFAULT 0,
            agent_version TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE ticket_uses (
            ticket_id INTEGER PRIMARY KEY REFERENCES tickets(id),
            scan_id TEXT NOT NULL,
            kiosk_id INTEGER NOT NULL REFERENCES kiosks(id),
            used_at TEXT NOT NULL
        );
        CREATE TABLE scans (
            id INTEGER PRIMARY KEY,
            scan_id TEXT NOT NULL UNIQUE,
            kiosk_id INTEGER NOT NULL REFERENCES kiosks(id),
            ticket_id INTEGER,
            company_id INTEGER,
            code TEXT NOT NULL,
            scanned_at TEXT NOT NULL,
            received_at TEXT NOT NULL,
            mode TEXT NOT NULL,
            accepted INTEGER NOT NULL,
            reason TEXT NOT NULL,
            local_reason TEXT
        );
        CREATE INDEX scans_received ON scans(received_at);
        CREATE INDEX scans_kiosk ON scans(kiosk_id, received_at);
        CREATE INDEX scans_ticket ON scans(ticket_id);
        CREATE TABLE conflicts (
            id INTEGER PRIMARY KEY,
            ticket_id INTEGER NOT NULL REFERENCES tickets(id),
            kind TEXT NOT NULL,
            first_scan_id TEXT NOT NULL,
            second_scan_id TEXT NOT NULL,
            created_at TEXT NOT NULL,
            resolved_at TEXT,
            resolved_by INTEGER,
            resolution TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX conflicts_open ON conflicts(resolved_at, id);
        """,
    )


@migration(3)
def gate_protocol(db: Connection) -> None:
    """Per-kiosk itinerary restriction and the indexes the kiosk protocol and scan log need.

    The scan log is paged by ``id`` (keyset) under each filter. Every index on ``scans`` costs
    each redeem a page write, so rare things get partial indexes (refusals, unusual reasons, codes
    that named no ticket) and common ones are found by walking ids newest first;
    ``(kiosk_id, id)`` replaces ``(kiosk_id, received_at)``.
    """
    script(
        db,
        """
        ALTER TABLE kiosks ADD COLUMN allowed_itineraries TEXT;
        CREATE INDEX kiosks_enrol_code ON kiosks(enrol_code_hash);
        DROP INDEX scans_kiosk;
        CREATE INDEX scans_kiosk_id ON scans(kiosk_id, id);
        CREATE INDEX scans_refused ON scans(id) WHERE accepted = 0;
        CREATE INDEX scans_unusual_reason ON scans(reason, id) WHERE reason != 'accepted';
        CREATE INDEX scans_unresolved_code ON scans(code) WHERE ticket_id IS NULL;
        CREATE INDEX conflicts_second_scan ON conflicts(second_scan_id);
        CREATE INDEX conflicts_ticket ON conflicts(ticket_id)
        """,
    )
