"""Numbered schema migrations, applied in order at start and recorded in ``_migrations``.

Each migration is a function registered with ``@migration(N)``; never edit one that has shipped,
add the next number instead. SQL is kept to what SQLite and PostgreSQL both accept where possible.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlite_utils

Migration = Callable[[sqlite_utils.Database], None]
MIGRATIONS: dict[int, Migration] = {}


def migration(number: int) -> Callable[[Migration], Migration]:
    def register(fn: Migration) -> Migration:
        if number in MIGRATIONS:
            raise RuntimeError(f"migration {number} registered twice")
        MIGRATIONS[number] = fn
        return fn

    return register


def apply_migrations(db: sqlite_utils.Database) -> list[int]:
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (number INTEGER PRIMARY KEY, name TEXT, applied_at REAL)")
    done = {row[0] for row in db.execute("SELECT number FROM _migrations").fetchall()}
    applied = []
    for number in sorted(MIGRATIONS):
        if number in done:
            continue
        fn = MIGRATIONS[number]
        db.execute("BEGIN IMMEDIATE")
        try:
            fn(db)
            db.execute(
                "INSERT INTO _migrations (number, name, applied_at) VALUES (?, ?, ?)",
                (number, fn.__name__, time.time()),
            )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        applied.append(number)
    return applied


def _script(db: sqlite_utils.Database, sql: str) -> None:
    for statement in sql.split(";"):
        if statement.strip():
            db.execute(statement)


@migration(1)
def accounts(db: sqlite_utils.Database) -> None:
    _script(
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
def gate_tickets(db: sqlite_utils.Database) -> None:
    """Catalogue, purchases, tickets and the kiosk protocol's tables.

    ``sync_seq`` columns take values from the single ``sync_counter`` row, bumped on every change a
    kiosk must learn about, so a kiosk's delta sync is ``WHERE sync_seq > cursor ORDER BY sync_seq``.
    """
    _script(
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
def gate_protocol(db: sqlite_utils.Database) -> None:
    """Per-kiosk itinerary restriction and the indexes the kiosk protocol and scan log need.

    The scan log is paged by ``id`` (keyset) under each filter. Every index on ``scans`` costs
    each redeem a page write, so rare things get partial indexes (refusals, unusual reasons, codes
    that named no ticket) and common ones are found by walking ids newest first;
    ``(kiosk_id, id)`` replaces ``(kiosk_id, received_at)``.
    """
    _script(
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


@migration(10)
def licences(db: sqlite_utils.Database) -> None:
    """Licence serials per company, the machines activated on them, and support policies.

    A machine row is kept when deactivated (history, reactivation); ``machine_deactivations`` is
    what the per-serial deactivation quota counts. ``kiosk_id`` ties a gate kiosk to its machine:
    one machine per kiosk (a test rig may run several kiosks on one box, so the box's fingerprint
    is unique only among ordinary machines).
    """
    _script(
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
def service_tickets(db: sqlite_utils.Database) -> None:
    """Helpdesk service tickets, their reply thread and attachments.

    ``seq`` comes from the single ``service_ticket_counter`` row, bumped inside the creating
    transaction, so ticket numbers ``S_<seq>_<ddmmyyyyHHMMSS>`` are unique by construction (and
    by the unique indexes); ``reply_token`` is what an e-mailed reply's address carries.
    """
    _script(
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
def used_human_check_nonces(db: sqlite_utils.Database) -> None:
    """Single use of the builtin human check's tokens across server worker processes.

    A token's nonce is claimed by inserting it; the primary key refuses a second claim from any
    worker. Rows are only needed until the token expires, then they are deleted.
    """
    _script(
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
def ticket_code_checks(db: sqlite_utils.Database) -> None:
    """A digest of each printed ticket's code, so an online redeem recognises it without Ed25519.

    Set when a ticket is printed (``server.tickets.service.code_check``); tickets printed before
    this migration have none and are verified by their signature, as every code was before.
    """
    _script(db, "ALTER TABLE tickets ADD COLUMN code_check BLOB")


@migration(22)
def uses_on_tickets(db: sqlite_utils.Database) -> None:
    """A ticket's use lives on its own row: ``used_at`` was already there; the scan and kiosk join it.

    A redeem then changes one row of ``tickets`` instead of that row plus a row of another table
    (a page fewer written per redeem). Single use is kept by ``WHERE used_at IS NULL`` on the one
    writer. ``ticket_uses`` stays as a read-only view for reports and tools.
    """
    _script(
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
def kiosk_storage_fault(db: sqlite_utils.Database) -> None:
    """Whether a kiosk last said it cannot save scans (its disk full or failing): the supervisor's list shows it."""
    _script(db, "ALTER TABLE kiosks ADD COLUMN storage_fault INTEGER NOT NULL DEFAULT 0")


@migration(24)
def ticket_use_numbers(db: sqlite_utils.Database) -> None:
    """A use takes its sync number in ``used_seq`` instead of moving the ticket's ``sync_seq``.

    ``sync_seq`` is indexed: changing it moves the ticket's index entry, a write to a page as
    random as the ticket itself, on every redeem. ``used_seq`` is set once (NULL → number) and
    only numbers are indexed, always the highest so far: its entry goes on the last page, which
    a whole batch of redeems shares. Sync reads both (``server.gate.sync``). Tickets used before
    this migration had their ``sync_seq`` moved, and are found by it.
    """
    _script(
        db,
        """
        ALTER TABLE tickets ADD COLUMN used_seq INTEGER;
        CREATE INDEX tickets_used_seq ON tickets(used_seq) WHERE used_seq IS NOT NULL
        """,
    )


@migration(27)
def conflict_reporters(db: sqlite_utils.Database) -> None:
    """Which scan's upload found each conflict, apart from which scan came first and second.

    A conflict's first and second scans are ordered by the scans' own times, so the scan whose
    upload found it may be either; a re-upload of that scan must get the same answer again.
    """
    _script(
        db,
        """
        ALTER TABLE conflicts ADD COLUMN reported_scan_id TEXT;
        UPDATE conflicts SET reported_scan_id = second_scan_id;
        CREATE INDEX conflicts_reported_scan ON conflicts(reported_scan_id);
        CREATE INDEX conflicts_first_scan ON conflicts(first_scan_id)
        """,
    )


@migration(25)
def mail_outbox(db: sqlite_utils.Database) -> None:
    """Outgoing mail waits in a table until the mail server takes it (``server.mail_outbox``).

    A change and the mail it causes are saved together; the delivery job of any worker process
    claims a due row (``claimed_until``) in a write transaction before sending, so no two send it.
    ``status`` is ``queued`` (waiting, or retrying after ``last_error``) or ``failed`` (gave up
    until the administrator retries); a delivered row is deleted.
    """
    _script(
        db,
        """
        CREATE TABLE mail_outbox (
            id INTEGER PRIMARY KEY,
            recipient TEXT NOT NULL,
            subject TEXT NOT NULL,
            message BLOB NOT NULL,
            status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            claimed_until REAL,
            last_error TEXT,
            created_at REAL NOT NULL
        );
        CREATE INDEX mail_outbox_due ON mail_outbox(next_attempt_at) WHERE status = 'queued'
        """,
    )


@migration(26)
def unknown_login_failures(db: sqlite_utils.Database) -> None:
    """Failed sign-ins under names that belong to no account, counted and locked like an account's.

    A user's failures and lock live on ``users``; without the same for unknown names, "this account
    is locked" after a few wrong passwords told an attacker which names exist. Rows are forgotten a
    day after their last failure, once no lock is running.
    """
    _script(
        db,
        """
        CREATE TABLE unknown_login_failures (
            login TEXT PRIMARY KEY,
            failed_logins INTEGER NOT NULL DEFAULT 0,
            locked_until REAL NOT NULL DEFAULT 0,
            last_failure_at REAL NOT NULL
        );
        CREATE INDEX unknown_login_failures_last ON unknown_login_failures(last_failure_at)
        """,
    )


@migration(28)
def purchases_at_port_scale(db: sqlite_utils.Database) -> None:
    """Payment details, void and correction of purchases; the indexes of the staff lists' order and search.

    A purchase is ``pending``, ``confirmed`` (its quantity is in the company's balance) or ``voided``;
    ``paid_on`` and ``bank_reference`` say which bank payment confirmed it. Corrections keep their
    history in ``purchase_corrections``. Searches match from the start of a name, tax id, reference,
    vessel or code, case-insensitively, so each has a ``NOCASE`` index that ``LIKE 'term%'`` can use;
    every list is newest first by id and pages by id (keyset), so each filter's index ends in id.
    """
    _script(
        db,
        """
        ALTER TABLE purchases ADD COLUMN bank_reference TEXT NOT NULL DEFAULT '';
        ALTER TABLE purchases ADD COLUMN paid_on TEXT;
        ALTER TABLE purchases ADD COLUMN voided_by INTEGER;
        ALTER TABLE purchases ADD COLUMN voided_at TEXT;
        ALTER TABLE purchases ADD COLUMN void_reason TEXT NOT NULL DEFAULT '';
        CREATE TABLE purchase_corrections (
            id INTEGER PRIMARY KEY,
            purchase_id INTEGER NOT NULL REFERENCES purchases(id),
            old_quantity INTEGER NOT NULL,
            new_quantity INTEGER NOT NULL,
            reason TEXT NOT NULL,
            corrected_by INTEGER,
            corrected_at TEXT NOT NULL
        );
        CREATE INDEX purchase_corrections_purchase ON purchase_corrections(purchase_id, id);
        CREATE INDEX purchases_status_id ON purchases(status, id);
        CREATE INDEX purchases_company_id ON purchases(company_id, id);
        CREATE INDEX purchases_reference_search ON purchases(reference COLLATE NOCASE);
        CREATE INDEX companies_name_search ON companies(name COLLATE NOCASE);
        CREATE INDEX companies_tax_id_search ON companies(tax_id COLLATE NOCASE);
        CREATE INDEX itineraries_active_id ON itineraries(active, id);
        CREATE INDEX itineraries_vessel_search ON itineraries(vessel COLLATE NOCASE);
        CREATE INDEX itineraries_voyage_search ON itineraries(voyage COLLATE NOCASE);
        CREATE INDEX services_active_id ON services(active, id);
        CREATE INDEX services_code_search ON services(code COLLATE NOCASE);
        CREATE INDEX services_name_es_search ON services(name_es COLLATE NOCASE);
        CREATE INDEX services_name_en_search ON services(name_en COLLATE NOCASE)
        """,
    )


@migration(31)
def integration_tokens_and_login_choices(db: sqlite_utils.Database) -> None:
    """Integration tokens, the choice of account after a sign-in by tax id, and the prospect role.

    An integration token (an ERP, the bank's reconciliation) acts with one role at the creator's
    company; only its hash is kept, and ``revoked_at`` ends it. A sign-in by a tax id that several
    accounts share, with a password that more than one of them has, leaves a short-lived
    ``login_choices`` row: the accounts that proved the password, among which the person picks.
    A prospect's account had the ``customer`` role and so the gate-ticket pages; it now has its own.
    """
    _script(
        db,
        """
        CREATE TABLE integration_tokens (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            role TEXT NOT NULL,
            company_id INTEGER NOT NULL REFERENCES companies(id),
            token_hash TEXT NOT NULL UNIQUE,
            created_by INTEGER NOT NULL REFERENCES users(id),
            created_at TEXT NOT NULL,
            last_used_at TEXT,
            revoked_at TEXT,
            revoked_by INTEGER
        );
        CREATE TABLE login_choices (
            token_hash TEXT PRIMARY KEY,
            user_ids TEXT NOT NULL,
            expires_at REAL NOT NULL
        );
        CREATE INDEX audit_log_event_id ON audit_log(event, id);
        CREATE INDEX audit_log_user_id ON audit_log(user_id, id);
        UPDATE profiles SET role = 'prospect'
            WHERE role = 'customer' AND company_id IN (SELECT id FROM companies WHERE kind = 'prospect')
        """,
    )


@migration(30)
def staff_lists_order_indexes(db: sqlite_utils.Database) -> None:
    """Indexes for the administrator's user list and the audit log's company filter.

    The user list reads users by ``(lower(full_name), id)`` a page at a time; without this index each
    page sorted every user. The audit log is filtered by company newest first, like its event and user
    filters (migration 31), so its index also ends in id.
    """
    _script(
        db,
        """
        CREATE INDEX users_name_order ON users(lower(full_name), id);
        CREATE INDEX audit_log_company_id ON audit_log(company_id, id)
        """,
    )
