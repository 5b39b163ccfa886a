"""What the kiosk knows about itself (its status on the lane screen) and about the server's clock."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from gate_agent.cache import AgentStore, StoreWriter
from gate_agent.sync.client import GateClient

log = logging.getLogger(__name__)

#: Tells the lane screens that the status changed.
Announce = Callable[[], Awaitable[None]]


@dataclass
class AgentStatus:
    online: bool = False
    last_sync: str | None = None
    kiosk_name: str = ""
    revoked: bool = False
    tickets: int = 0
    #: The last scan could not be saved (the kiosk's disk is full or failing).
    storage_fault: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_store(cls, store: AgentStore) -> AgentStatus:
        """The status a kiosk starts with, from what its cache kept of the last run."""
        return cls(
            kiosk_name=store.get_meta("kiosk_name", "") or "",
            revoked=store.get_meta("revoked") == "1",
            # A kiosk started offline still says how many tickets it can decide.
            tickets=store.ticket_count,
        )

    def report_headers(self) -> dict[str, str]:
        """What every request tells the server about this kiosk (the supervisor's kiosk list shows it)."""
        return {"X-Kiosk-Storage": "fault" if self.storage_fault else "ok"}


async def mark_revoked(status: AgentStatus, store: AgentStore, writer: StoreWriter, client: GateClient) -> bool:
    """The server no longer accepts the client's token: refuse from now on, and remember it across restarts
    (True). Unless the box was enrolled again while the agent ran: then the client takes the new token and
    the kiosk carries on (False), rather than writing "revoked" over its new enrolment."""
    try:
        newer = await writer(store.revoke_token, client.token or "")
    except (sqlite3.Error, OSError):
        # Refused from now on all the same; after a restart the server says it again.
        log.exception("could not save that this kiosk is revoked")
        newer = None
    if newer:
        log.warning("the server refused this kiosk's old token; it was enrolled again since: using the new one")
        client.token = newer
        status.revoked = False
        status.kiosk_name = store.get_meta("kiosk_name", "") or ""
        return False
    status.revoked = True
    status.online = False
    return True


@dataclass
class ServerClock:
    """Follows the server's clock: kiosks' local clocks drift, the server's verdicts must not."""

    offset: timedelta = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def observe(self, server_time: datetime, sent_at: float, received_at: float) -> None:
        midpoint = datetime.fromtimestamp((sent_at + received_at) / 2, UTC)
        self.offset = server_time - midpoint
