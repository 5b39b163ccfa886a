"""Migrations 40–44: the driver share links of gate tickets (issue 16)."""

from __future__ import annotations

from server.migrations import migration, script
from server.sql import Connection


@migration(40)
def ticket_share_links(db: Connection) -> None:
    """A customer sends one ticket to a truck driver as a bearer link: one row per link.

    Only the token's hash is kept (a copy of the database opens no ticket); a link dies when
    ``revoked_at`` is set, when its ticket is deleted, or when the itinerary's gate window closes
    (read from the itinerary when the link is opened, so a moved window moves the link's end too).
    """
    script(
        db,
        """
        CREATE TABLE ticket_share_links (
            id INTEGER PRIMARY KEY,
            ticket_id INTEGER NOT NULL REFERENCES tickets(id),
            company_id INTEGER NOT NULL REFERENCES companies(id),
            token_hash TEXT NOT NULL UNIQUE,
            created_by INTEGER REFERENCES users(id),
            created_at TEXT NOT NULL,
            revoked_at TEXT,
            revoked_by INTEGER REFERENCES users(id),
            open_count INTEGER NOT NULL DEFAULT 0,
            last_opened_at TEXT
        );
        CREATE INDEX ticket_share_links_ticket ON ticket_share_links(ticket_id)
        """,
    )
