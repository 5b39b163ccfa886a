"""Migration 32: indexes in the order the helpdesk and licence lists page (newest first, by keyset)."""

from __future__ import annotations

from server.migrations import migration, script
from server.sql import Connection


@migration(32)
def helpdesk_paging_indexes(db: Connection) -> None:
    """A company's serials newest first, read a page at a time from the index instead of sorting them all.

    Service tickets already have theirs (``service_tickets_company``, ``service_tickets_queue``), and a
    serial's policies are found through ``policies_serial``.
    """
    script(db, "CREATE INDEX serials_company_newest ON serials(company_id, id)")
