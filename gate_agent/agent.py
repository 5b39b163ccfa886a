"""The gate agent: every scanned code → local decision → (online redeem) → verdict on the kiosk screen.

The decision is always made locally first from the SQLite cache with the shared pure ``decide``;
the scan is written to the durable outbox before anything else; when the server is reachable the
agent then redeems online (short timeout) and the server's verdict, which enforces single use
across kiosks, is what the screen shows. Offline, the local verdict stands and the outbox uploads
it later exactly once (the server is idempotent by scan id).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gate_agent.cache import AgentStore, OutboxEntry, StoreWriter
from gate_agent.config import AgentConfig
from gate_agent.status import AgentStatus, ServerClock, mark_revoked
from gate_agent.sync.client import GateClient, ServerError, Unreachable
from gate_core.codes import DECIMAL_PREFIX, PREFIX, mask_code
from gate_core.decision import Verdict, decide
from gate_core.reasons import Advice, Reason, advice_text, reason_text

__all__ = ["AgentStatus", "GateAgent", "ServerClock", "new_scan_id"]
log = logging.getLogger(__name__)
Listener = Callable[[dict[str, Any]], Awaitable[None]]


def new_scan_id() -> str:
    """A new unique scan id that sorts by creation time: 32 hex digits, like a UUIDv7.

    48 bits of Unix milliseconds then 80 random bits. Because ids from every kiosk grow with
    time, the server's index of scan ids grows at its end instead of being written all over
    (a page fewer per redeem); 80 random bits per millisecond keep them unique.
    """
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


@dataclass(frozen=True)
class Scan:
    """One code being decided: what was read, where, and when (by the server's clock and by this box's)."""

    scan_id: str
    text: str
    source: str
    at: datetime
    wall_time: float
    ticket_id: int | None


#: How long a scan the kiosk could not save waits for the server, whose answer alone can let it through.
UNSAVED_TIMEOUT_S = 3.0
#: How often the screen's status is compared with what it was last sent (a cheap read of two counters).
STATUS_CHECK_S = 0.5


class GateAgent:
    """Decides the scans and tells the lane screens; the app factory gives it what it works with."""

    def __init__(
        self,
        config: AgentConfig,
        store: AgentStore,
        client: GateClient,
        status: AgentStatus,
        writer: StoreWriter,
        clock: ServerClock,
    ) -> None:
        self.config = config
        self.store = store
        self.client = client
        self.status = status
        self.writer = writer
        self.clock = clock
        self.listeners: list[Listener] = []
        self._status_sent: dict[str, Any] | None = None
        self._lock = asyncio.Lock()

    async def handle_code(self, text: str, source: str = "scanner") -> dict[str, Any]:
        """Decide one scan and tell the screen; scans are handled one at a time, in order."""
        async with self._lock:
            started = time.perf_counter()
            # The clock is read here only: everything below takes the scan's time.
            now, wall_time = self.clock.now(), time.time()
            lang = self.config.language
            facts = self.store.facts_for(text, lang)
            verdict = decide(facts.parsed, facts.ticket, facts.prior_use, facts.window, now, self.store.gate_config())
            ticket_id = facts.ticket.ticket_id if facts.ticket else None
            scan = Scan(new_scan_id(), text, source, now, wall_time, ticket_id)
            entry = OutboxEntry(scan.scan_id, text, now.isoformat(), verdict.accepted, verdict.reason)
            saved = await self._save_scan(entry, scan)
            shown = self._display(verdict, scan, "offline")
            if not saved:
                # Shown instead of the local verdict when the server cannot decide it either: an
                # entry the outbox never reports could be let in again at another gate.
                fault = Reason.STORAGE_FAULT
                shown |= {"accepted": False, "reason": fault.value, "text": reason_text(fault, lang)}
            if self.status.online and not self.status.revoked:
                # Unsaved, the scan can still be decided and recorded by the server, whose word counts.
                shown = await self._redeem_online(scan, shown, settle=saved)
            shown["ms"] = round((time.perf_counter() - started) * 1000, 2)
            # The id the outbox and the server's scan log know this scan by: a lane display can link to it.
            shown["scan_id"] = scan.scan_id
        await self.broadcast({"type": "verdict", **shown})
        await self.broadcast_status()
        return shown

    async def _save_scan(self, entry: OutboxEntry, scan: Scan) -> bool:
        """Put the scan in the outbox; False when the kiosk's storage refuses it (disk full or failing)."""
        try:
            await self.writer(self.store.record_scan, entry, scan.ticket_id, scan.wall_time)
        except (sqlite3.Error, OSError):
            self._storage_failed()
            return False
        if self.status.storage_fault:
            log.warning("scans are saved again")
            self.status.storage_fault = False
        return True

    def _storage_failed(self) -> None:
        if not self.status.storage_fault:
            log.exception("cannot save scans in %s; refusing what the server cannot decide", self.store.path)
            self.status.storage_fault = True

    async def _settle(self, scan: Scan, verdict: Verdict) -> None:
        """Record the server's verdict against the saved scan; the server's answer stands even if this fails."""
        try:
            await self.writer(self.store.settle_online, scan.scan_id, scan.ticket_id, verdict.to_dict(), scan.wall_time)
        except (sqlite3.Error, OSError) as exc:
            # The scan stays in the outbox: its upload (same scan id) settles it.
            log.warning("could not record the server's verdict for %s: %s", scan.scan_id, exc)

    async def _redeem_online(self, scan: Scan, local: dict[str, Any], *, settle: bool = True) -> dict[str, Any]:
        """The server's verdict (``local`` when it cannot give one); ``settle`` records it against the saved scan.

        An unsaved scan (``settle`` False) waits longer: without the server's answer it is refused.
        """
        timeout = self.config.online_timeout_ms / 1000
        if not settle:
            timeout = max(timeout, UNSAVED_TIMEOUT_S)
        try:
            answer = await self.client.redeem(scan.scan_id, scan.text, scan.at, timeout=timeout)
        except Unreachable as exc:
            log.info("online redeem failed, keeping the local verdict: %s", exc)
            self.status.online = False
            return local
        except ServerError as exc:
            if exc.code != "revoked_kiosk":
                log.warning("server refused the redeem request: %s", exc)
                return local
            if not await self.mark_revoked():
                return local  # enrolled again meanwhile: the outbox sends it with the new token
            verdict = Verdict(accepted=False, reason=Reason.REVOKED_KIOSK)
        else:
            try:
                verdict = Verdict.from_dict(answer)
            except (KeyError, TypeError, ValueError):
                # Not settled: the scan stays in the outbox, and its upload gets the server's word.
                log.warning("unexpected redeem answer; keeping the local verdict")
                return local
        if settle:
            await self._settle(scan, verdict)
        return self._display(verdict, scan, "online")

    def _display(self, verdict: Verdict, scan: Scan, mode: str) -> dict[str, Any]:
        lang, text = self.config.language, scan.text
        ticket = verdict.ticket
        prior = verdict.prior_use
        return {
            "accepted": verdict.accepted,
            "reason": str(verdict.reason),
            "text": reason_text(verdict.reason, lang),
            "ticket_id": verdict.ticket_id,
            "company": ticket.company_name if ticket else "",
            "itinerary": ticket.itinerary_label if ticket else "",
            "services": list(ticket.services) if ticket else [],
            "used_at": prior.used_at.isoformat() if prior else None,
            "used_where": prior.kiosk_name if prior else None,
            "code": mask_code(text)
            if text.upper().startswith((PREFIX, DECIMAL_PREFIX))
            else text[-4:].rjust(len(text), "•"),
            "source": scan.source,
            "mode": mode,
        }

    async def mark_revoked(self) -> bool:
        """Whether the kiosk is now revoked (False: the box was enrolled again and the client took its token)."""
        return await mark_revoked(self.status, self.store, self.writer, self.client)

    # --- screen -------------------------------------------------------------------------------
    async def broadcast(self, message: dict[str, Any]) -> None:
        for listener in list(self.listeners):
            try:
                await listener(message)
            except (ConnectionError, RuntimeError):
                # Two broadcasts (a verdict, the camera's advice) may both find the same screen gone.
                if listener in self.listeners:
                    self.listeners.remove(listener)

    async def advise(self, advice: Advice | str, source: str) -> None:
        """Tell the screens what the driver should do with a ticket the camera sees but cannot read."""
        advice = Advice(advice)
        text = advice_text(advice, self.config.language)
        await self.broadcast({"type": "advice", "advice": advice.value, "text": text, "source": source})

    def status_message(self) -> dict[str, Any]:
        return {
            "type": "status",
            "online": self.status.online,
            "last_sync": self.status.last_sync,
            "pending": self.store.pending_count(),
            "rejected": self.store.rejected_count(),
            "kiosk": self.status.kiosk_name,
            "revoked": self.status.revoked,
            "storage_fault": self.status.storage_fault,
            "tickets": self.status.tickets,
            "language": self.config.language,
            "verdict_hold_s": self.config.verdict_hold_s,
            "sound": self.config.verdict_sound,
        }

    async def broadcast_status(self) -> None:
        self._status_sent = self.status_message()
        await self.broadcast(self._status_sent)

    async def push_status_changes(self, interval_s: float = STATUS_CHECK_S) -> None:
        """Send the status to the screens whenever it differs from what they were last sent.

        Counters change in many places (an upload, a pull, a prune, ``portgate-agent outbox --retry``
        in another process), so comparing here catches every change, where telling the screen from
        each of those places would miss the next one added.
        """
        while True:
            await asyncio.sleep(interval_s)
            if not self.listeners:
                continue
            try:
                changed = self.status_message() != self._status_sent
            except (sqlite3.Error, OSError) as exc:
                log.warning("cannot read the kiosk's counters for the screen: %s", exc)
                continue
            if changed:
                await self.broadcast_status()
