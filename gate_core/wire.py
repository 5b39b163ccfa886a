"""The wire schema between kiosk and server: sync rows, live channel messages, close codes.

One definition for both sides: the server produces these shapes and the kiosk reads them by
name (a newer server may add columns or message types; the kiosk ignores what it does not know).
"""

from __future__ import annotations

from typing import Final, NamedTuple


class TicketRow(NamedTuple):
    """A ticket in sync pages and live pushes: sent as a JSON array in this column order."""

    id: int
    itinerary_id: int
    company_id: int
    generation_id: int
    printed: int  # 0/1
    deleted: int  # 0/1
    short_code: str
    used_at: str | None  # ISO-8601, UTC
    used_by: str | None  # the kiosk id that used it (a string on the kiosk)
    used_scan_id: str | None  # the scan that used it
    seq: int  # the ticket's latest change number (the sync cursor moves past it)


#: The columns of a ticket row, in the server's order (a kiosk finds them by name, so a newer
#: server may add more).
TICKET_COLUMNS: Final = TicketRow._fields
#: Columns a kiosk does without (None) when a server older than them does not send them.
OPTIONAL_TICKET_COLUMNS: Final = frozenset({"used_scan_id"})

# Live channel (/api/v1/gate/live) message types, server → kiosk.
LIVE_HELLO: Final = "hello"  # first message of every connection: {"type", "seq", "epoch", "server_time"}
LIVE_TICKETS: Final = "tickets"  # changed tickets, as a sync page without cursor or has_more
LIVE_REVOKED: Final = "revoked"  # the kiosk was revoked: stop

#: WebSocket close code with which the server ends a revoked kiosk's live channel.
CLOSE_REVOKED: Final = 4003
