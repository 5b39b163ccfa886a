"""Migrations 25–31: a production year (mail outbox, sign-in and links, purchases, indexes, integrations)."""

from __future__ import annotations

from server.migrations import migration, script
from server.sql import Connection


@migration(27)
def conflict_reporters(db: Connection) -> None:
    """Which scan's upload found each conflict, apart from which scan came first and second.

    A conflict's first and second scans are ordered by the scans' own times, so the scan whose
    upload found it may be either; a re-upload of that scan must get the same answer again.
    """
    script(
        db,
        """
        ALTER TABLE conflicts ADD COLUMN reported_scan_id TEXT;
        UPDATE conflicts SET reported_scan_id = second_scan_id;
        CREATE INDEX conflicts_reported_scan ON conflicts(reported_scan_id);
        CREATE INDEX conflicts_first_scan ON conflicts(first_scan_id)
        """,
    )


@migration(25)
def mail_outbox(db: Connection) -> None:
    """Outgoing mail waits in a table until the mail server takes it (``server.mail_outbox``).

    A change and the mail it causes are saved together; the delivery job of any worker process
    claims a due row (``claimed_until``) in a write transaction before sending, so no two send it.
    ``status`` is ``queued`` (waiting, or retrying after ``last_error``) or ``failed`` (gave up
    until the administrator retries); a delivered row is deleted.
    """
    script(
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
def unknown_login_failures(db: Connection) -> None:
    """Failed sign-ins under names that belong to no account, counted and locked like an account's.

    A user's failures and lock live on ``users``; without the same for unknown names, "this account
    is locked" after a few wrong passwords told an attacker which names exist. Rows are forgotten a
    day after their last failure, once no lock is running.
    """
    script(
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
def purchases_at_port_scale(db: Connection) -> None:
    """Payment details, void and correction of purchases; the indexes of the staff lists' order and search.

    A purchase is ``pending``, ``confirmed`` (its quantity is in the company's balance) or ``voided``;
    ``paid_on`` and ``bank_reference`` say which bank payment confirmed it. Corrections keep their
    history in ``purchase_corrections``. Searches match from the start of a name, tax id, reference,
    vessel or code, case-insensitively, so each has a ``NOCASE`` index that ``LIKE 'term%'`` can use;
    every list is newest first by id and pages by id (keyset), so each filter's index ends in id.
    """
    script(
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
def integration_tokens_and_login_choices(db: Connection) -> None:
    """Integration tokens, the choice of account after a sign-in by tax id, and the prospect role.

    An integration token (an ERP, the bank's reconciliation) acts with one role at the creator's
    company; only its hash is kept, and ``revoked_at`` ends it. A sign-in by a tax id that several
    accounts share, with a password that more than one of them has, leaves a short-lived
    ``login_choices`` row: the accounts that proved the password, among which the person picks.
    A prospect's account had the ``customer`` role and so the gate-ticket pages; it now has its own.
    """
    script(
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
def staff_lists_order_indexes(db: Connection) -> None:
    """Indexes for the administrator's user list and the audit log's company filter.

    The user list reads users by ``(lower(full_name), id)`` a page at a time; without this index each
    page sorted every user. The audit log is filtered by company newest first, like its event and user
    filters (migration 31), so its index also ends in id.
    """
    script(
        db,
        """
        CREATE INDEX users_name_order ON users(lower(full_name), id);
        CREATE INDEX audit_log_company_id ON audit_log(company_id, id)
        """,
    )
