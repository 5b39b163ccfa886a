"""Migrations 10–24: the helpdesk and licences, then the gate at port scale (sync numbers, uses, kiosk health)."""

from __future__ import annotations

from server.migrations import migration, script
from server.sql import Connection


@migration(10)
def licences(db: Connection) -> None:
    """Licence serials per company, the machines activated on them, and support policies.

    A machine row is kept when deactivated (history, reactivation); ``machine_deactivations`` is
    what the per-serial deactivation quota counts. ``kiosk_id`` ties a gate kiosk to its machine:
    one machine per kiosk (a test rig may run several kiosks on one box, so the box's fingerprint
    is unique only among ordinary machines).
    """
    script(
        db,
        """
        CREATE TABLE serials (
            id INTEGER PRIMARY KEY,
            company_id INTEGER NOT NULL REFERENCES companies(id),
            serial TEXT NOT NULL UNIQUE,
            system TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            valid_until TEXT NOT NULL,
            suspended INTEGER NOT NULL DEFAULT 0,
            max_machines INTEGER NOT NULL CHECK (max_machines >= 0),
            max_open_tickets INTEGER NOT NULL CHECK (max_open_tickets >= 0),
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX serials_company ON serials(company_id, system);
        CREATE TABLE machines (
            id INTEGER PRIMARY KEY,
            serial_id INTEGER NOT NULL REFERENCES serials(id),
            name TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            active INTEGER NOT NULL DEFAULT 1,
            activated_at TEXT NOT NULL,
            deactivated_at TEXT,
            last_seen_at TEXT,
            activated_by INTEGER,
            kiosk_id INTEGER REFERENCES kiosks(id)
        );
        CREATE UNIQUE INDEX machines_fingerprint ON machines(serial_id, fingerprint) WHERE kiosk_id IS NULL;
        CREATE UNIQUE INDEX machines_kiosk ON machines(kiosk_id) WHERE kiosk_id IS NOT NULL;
        CREATE INDEX machines_serial_active ON machines(serial_id, active);
        CREATE TABLE machine_deactivations (
            id INTEGER PRIMARY KEY,
            serial_id INTEGER NOT NULL REFERENCES serials(id),
            machine_id INTEGER NOT NULL REFERENCES machines(id),
            at TEXT NOT NULL,
            by_user_id INTEGER
        );
        CREATE INDEX machine_deactivations_serial ON machine_deactivations(serial_id, at);
        CREATE TABLE policies (
            id INTEGER PRIMARY KEY,
            serial_id INTEGER NOT NULL REFERENCES serials(id),
            number TEXT NOT NULL UNIQUE,
            description TEXT NOT NULL,
            registered_on TEXT NOT NULL,
            valid_until TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX policies_serial ON policies(serial_id)
        """,
    )


@migration(11)
def service_tickets(db: Connection) -> None:
    """Helpdesk service tickets, their reply thread and attachments.

    ``seq`` comes from the single ``service_ticket_counter`` row, bumped inside the creating
    transaction, so ticket numbers ``S_<seq>_<ddmmyyyyHHMMSS>`` are unique by construction (and
    by the unique indexes); ``reply_token`` is what an e-mailed reply's address carries.
    """
    script(
        db,
        """
        CREATE TABLE service_ticket_counter (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
        INSERT INTO service_ticket_counter (id, value) VALUES (1, 0);
        CREATE TABLE service_tickets (
            id INTEGER PRIMARY KEY,
            seq INTEGER NOT NULL UNIQUE,
            number TEXT NOT NULL UNIQUE,
            company_id INTEGER NOT NULL REFERENCES companies(id),
            policy_id INTEGER NOT NULL REFERENCES policies(id),
            serial_id INTEGER NOT NULL REFERENCES serials(id),
            system TEXT NOT NULL,
            area TEXT NOT NULL,
            subject TEXT NOT NULL,
            email TEXT NOT NULL,
            phone TEXT NOT NULL,
            contact_hours TEXT NOT NULL,
            description TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'open'
                CHECK (status IN ('open', 'waiting_customer', 'closed', 'cancelled')),
            language TEXT NOT NULL DEFAULT 'es',
            reply_token TEXT NOT NULL UNIQUE,
            created_by INTEGER NOT NULL REFERENCES users(id),
            assigned_to INTEGER REFERENCES users(id),
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            closed_at TEXT,
            rating INTEGER CHECK (rating BETWEEN 1 AND 5),
            rating_comment TEXT NOT NULL DEFAULT '',
            rated_at TEXT
        );
        CREATE INDEX service_tickets_company ON service_tickets(company_id, id);
        CREATE INDEX service_tickets_serial_status ON service_tickets(serial_id, status);
        CREATE INDEX service_tickets_queue ON service_tickets(area, status, id);
        CREATE INDEX service_tickets_duplicate ON service_tickets(company_id, system, email, status);
        CREATE TABLE service_replies (
            id INTEGER PRIMARY KEY,
            ticket_id INTEGER NOT NULL REFERENCES service_tickets(id),
            author_role TEXT NOT NULL CHECK (author_role IN ('customer', 'agent')),
            user_id INTEGER REFERENCES users(id),
            author_name TEXT NOT NULL,
            body TEXT NOT NULL,
            via TEXT NOT NULL,
            message_id TEXT UNIQUE,
            created_at TEXT NOT NULL
        );
        CREATE INDEX service_replies_ticket ON service_replies(ticket_id, id);
        CREATE TABLE service_attachments (
            id INTEGER PRIMARY KEY,
            ticket_id INTEGER NOT NULL REFERENCES service_tickets(id),
            reply_id INTEGER REFERENCES service_replies(id),
            stored_name TEXT NOT NULL UNIQUE,
            original_name TEXT NOT NULL,
            content_type TEXT NOT NULL,
            size INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            uploaded_by INTEGER,
            created_at TEXT NOT NULL
        );
        CREATE INDEX service_attachments_ticket ON service_attachments(ticket_id, reply_id)
        """,
    )


@migration(20)
def used_human_check_nonces(db: Connection) -> None:
    """Single use of the builtin human check's tokens across server worker processes.

    A token's nonce is claimed by inserting it; the primary key refuses a second claim from any
    worker. Rows are only needed until the token expires, then they are deleted.
    """
    script(
        db,
        """
        CREATE TABLE used_nonces (
            nonce TEXT PRIMARY KEY,
            expires_at REAL NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX used_nonces_expiry ON used_nonces(expires_at)
        """,
    )


@migration(21)
def ticket_code_checks(db: Connection) -> None:
    """A digest of each printed ticket's code, so an online redeem recognises it without Ed25519.

    Set when a ticket is printed (``server.tickets.service.code_check``); tickets printed before
    this migration have none and are verified by their signature, as every code was before.
    """
    script(db, "ALTER TABLE tickets ADD COLUMN code_check BLOB")


@migration(22)
def uses_on_tickets(db: Connection) -> None:
    """A ticket's use lives on its own row: ``used_at`` was already there; the scan and kiosk join it.

    A redeem then changes one row of ``tickets`` instead of that row plus a row of another table
    (a page fewer written per redeem). Single use is kept by ``WHERE used_at IS NULL`` on the one
    writer. ``ticket_uses`` stays as a read-only view for reports and tools.
    """
    script(
        db,
        """
        ALTER TABLE tickets ADD COLUMN used_scan_id TEXT;
        ALTER TABLE tickets ADD COLUMN used_kiosk_id INTEGER REFERENCES kiosks(id);
        UPDATE tickets SET
            used_scan_id = (SELECT u.scan_id FROM ticket_uses u WHERE u.ticket_id = tickets.id),
            used_kiosk_id = (SELECT u.kiosk_id FROM ticket_uses u WHERE u.ticket_id = tickets.id),
            used_at = (SELECT u.used_at FROM ticket_uses u WHERE u.ticket_id = tickets.id)
        WHERE id IN (SELECT ticket_id FROM ticket_uses);
        DROP TABLE ticket_uses;
        CREATE VIEW ticket_uses AS
            SELECT id AS ticket_id, used_scan_id AS scan_id, used_kiosk_id AS kiosk_id, used_at
            FROM tickets WHERE used_scan_id IS NOT NULL
        """,
    )


@migration(23)
def kiosk_storage_fault(db: Connection) -> None:
    """Whether a kiosk last said it cannot save scans (its disk full or failing): the supervisor's list shows it."""
    script(db, "ALTER TABLE kiosks ADD COLUMN storage_fault INTEGER NOT NULL DEFAULT 0")


@migration(24)
def ticket_use_numbers(db: Connection) -> None:
    """A use takes its sync number in ``used_seq`` instead of moving the ticket's ``sync_seq``.

    ``sync_seq`` is indexed: changing it moves the ticket's index entry, a write to a page as
    random as the ticket itself, on every redeem. ``used_seq`` is set once (NULL → number) and
    only numbers are indexed, always the highest so far: its entry goes on the last page, which
    a whole batch of redeems shares. Sync reads both (``server.gate.sync``). Tickets used before
    this migration had their ``sync_seq`` moved, and are found by it.
    """
    script(
        db,
        """
        ALTER TABLE tickets ADD COLUMN used_seq INTEGER;
        CREATE INDEX tickets_used_seq ON tickets(used_seq) WHERE used_seq IS NOT NULL
        """,
    )
