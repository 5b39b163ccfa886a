"""Keeping the kiosk in step with the server: delta pull, outbox upload with backoff, live channel.

APScheduler runs the pull and the upload as interval jobs (never two of the same at once); the live
WebSocket applies uses, prints and deletions within a second and falls back to the pull when it
is down. Any successful exchange marks the agent online; a failure marks it offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from datetime import datetime
from functools import partial
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from gate_agent.cache import AgentStore, OutboxEntry, StoreWriter
from gate_agent.config import AgentConfig
from gate_agent.status import AgentStatus, Announce, ServerClock, mark_revoked
from gate_agent.sync.client import GateClient, ServerError, Unreachable
from gate_agent.sync.page import BadSyncData, checked_itineraries, checked_page
from gate_core.wire import LIVE_HELLO, LIVE_REVOKED, LIVE_TICKETS

log = logging.getLogger(__name__)
UPLOAD_BATCH = 200
#: Tickets of a sync page stored per transaction (~50 ms on a small box), so scans go in between.
APPLY_PART = 5000
#: Seconds between attempts to reopen the live channel (±25 %): a kiosk catches up within about
#: this long of its link's return.
LIVE_RETRY_S = 1.0


#: The longest sync epoch taken as one (the server's are 32 hex digits).
MAX_EPOCH = 100


#: Statuses with which the server refuses an upload for what is in it (not for the moment).
_REFUSED_FOR_GOOD = (400, 409, 413, 422)


def _upload_item(entry: OutboxEntry) -> dict[str, Any]:
    return {
        "scan_id": entry.scan_id,
        "code": entry.code,
        "scanned_at": entry.scanned_at,
        "accepted": entry.accepted,
        "reason": entry.reason,
    }


def _refused(exc: ServerError, batch: list[OutboxEntry]) -> dict[str, str]:
    """scan id → the server's reason, for each scan an upload error names (``scans.3.reason``)."""
    if exc.status not in _REFUSED_FOR_GOOD:
        return {}
    # Only the scans the server's own validation error names: a refusal that names none (a proxy's
    # 413 even for one scan, a changed endpoint) says nothing about the scans and is tried again.
    refused: dict[str, str] = {}
    for field, message in exc.fields.items():
        parts = field.split(".")
        if len(parts) >= 2 and parts[0] == "scans" and parts[1].isdigit() and int(parts[1]) < len(batch):
            scan_id = batch[int(parts[1])].scan_id
            refused[scan_id] = f"{refused[scan_id]}; " if scan_id in refused else ""
            refused[scan_id] += f"{exc.status} {field}: {message}"
    return refused


class SyncService:
    """Pulls, uploads and listens for this kiosk; ``announce`` tells the screens when the status changed."""

    def __init__(
        self,
        store: AgentStore,
        client: GateClient,
        status: AgentStatus,
        announce: Announce,
        *,
        writer: StoreWriter,
        clock: ServerClock,
        config: AgentConfig,
    ) -> None:
        self.store = store
        self.client = client
        self.status = status
        self.announce = announce
        self.writer = writer
        self.clock = clock
        self.config = config
        self.scheduler: AsyncIOScheduler | None = None
        self._live_task: asyncio.Task[None] | None = None
        self._upload_backoff = 0.0
        self._next_upload = 0.0
        self._pull_lock = asyncio.Lock()
        self._last_pull_ok = False

    # --- pull ---------------------------------------------------------------------------------
    async def pull(self) -> int:
        """Fetch every page changed since the cursor; returns how many tickets were applied."""
        applied = 0
        async with self._pull_lock:
            try:
                await self._pull_kiosk()
                has_more = True
                while has_more:
                    count, has_more = await self._pull_page()
                    applied += count
            except Unreachable as exc:
                await self._set_online(False, f"sync failed: {exc}")
                return applied
            except ServerError as exc:
                await self._server_error(exc)
                return applied
            except BadSyncData as exc:
                # Nothing of the bad page was stored and the cursor stays: the next pull asks again.
                log.error("the server sent sync data this kiosk cannot use, stored none of it: %s", exc)
                return applied
            except Exception:  # noqa: BLE001 - a failed pull must never stop the kiosk; it decides from its cache
                # The cursor moves only with a page's last part: the next pull asks for the page again.
                log.exception("sync failed; the kiosk decides from what it has stored")
                return applied
        self.status.last_sync = self.clock.now().isoformat(timespec="seconds")
        self.status.tickets = self.store.ticket_count
        self._last_pull_ok = True
        await self._set_online(True)
        return applied

    async def _pull_kiosk(self) -> None:
        """This kiosk as the server knows it: its name and the itineraries it may let through."""
        me = await self.client.me()
        allowed = checked_itineraries(me.get("allowed_itineraries"))
        name = me.get("name")
        name = name if isinstance(name, str) else ""
        await self.writer(
            self.store.set_meta, {"kiosk_name": name, "allowed_itineraries": json.dumps(allowed) if allowed else ""}
        )
        self.status.kiosk_name = name

    async def _pull_page(self) -> tuple[int, bool]:
        """Fetch and store the next page; how many tickets it had, and whether more pages follow."""
        sent = time.time()
        page = await self.client.sync_page(self.store.cursor, pending_uploads=self.store.pending_count())
        received = time.time()
        if await self._start_over_on_new_epoch(page.get("epoch")):
            return 0, True  # the page counted from a cursor of the old epoch: ask again, from 0
        # Checked whole (a bad page stores nothing), then stored in parts: the scans at the gate
        # record their outbox entries between the parts, not after a whole big page.
        checked = await asyncio.to_thread(checked_page, page)
        applied = 0
        for part in checked.parts(APPLY_PART):
            store_part = partial(self.store.apply_checked, part, advance_cursor=part.cursor is not None)
            applied += await self.writer(store_part)
        self._observe_time(page, sent, received)
        return applied, bool(page.get("has_more"))

    async def _start_over_on_new_epoch(self, epoch: Any) -> bool:
        """Whether the server brings a sync epoch other than the stored one, when the cache is dropped
        (the outbox and local uses kept) and the cursor goes back to 0: the server was restored from a
        backup, so its counter may be behind this kiosk's cursor and the kiosk would never hear of what
        changes next. The first epoch a kiosk sees is just stored; a server sending none (older than
        epochs) changes nothing."""
        if not isinstance(epoch, str) or not epoch or len(epoch) > MAX_EPOCH:
            return False
        stored = self.store.sync_epoch
        if stored == epoch:
            return False
        if stored is None:
            await self.writer(self.store.set_meta, {"sync_epoch": epoch})
            return False
        log.warning("the server's data was restored from a backup: syncing everything again (epoch %s)", epoch)
        await self.writer(self.store.start_over, epoch)
        self.status.tickets = 0
        return True

    def _observe_time(self, page: dict[str, Any], sent: float, received: float) -> None:
        server_time = page.get("server_time")
        if isinstance(server_time, str):
            try:
                self.clock.observe(datetime.fromisoformat(server_time.replace("Z", "+00:00")), sent, received)
            except ValueError:
                pass

    # --- upload -------------------------------------------------------------------------------
    async def upload(self, force: bool = False) -> int:
        """Send pending offline scans; on failure wait longer each time (up to a minute).

        A scan the server refuses for good (a validation error naming it) is set aside in the
        outbox with the server's reason instead of blocking the scans behind it
        (``portgate-agent outbox --retry`` queues it again); a refusal that names no scan counts as
        a failure and is tried again, after halving the batch for a 413.
        """
        if not force and time.monotonic() < self._next_upload:
            return 0
        sent_total = 0
        size = UPLOAD_BATCH
        while batch := self.store.pending(size):
            try:
                answer = await self.client.upload([_upload_item(e) for e in batch], self.store.pending_count())
            except ServerError as exc:
                refused = _refused(exc, batch)
                if refused:
                    log.error("the server refused %d scan(s) for good, set aside: %s", len(refused), refused)
                    await self.writer(self.store.mark_rejected, refused)
                    continue
                if exc.status == 413 and size > 1:
                    size = max(1, size // 2)  # too big for the server (or a proxy): smaller batches
                    continue
                await self._upload_failed(batch, exc)
                return sent_total
            except Unreachable as exc:
                await self._upload_failed(batch, exc)
                return sent_total
            done = await self._mark_answered(batch, answer)
            sent_total += len(done)
            if len(done) < len(batch):  # an answer that skips scans: try those later, not in a loop now
                await self._upload_failed([e for e in batch if e.scan_id not in done], None)
                break
            self._upload_backoff = 0.0
            self._next_upload = 0.0
        if sent_total:
            await self._set_online(True)
        return sent_total

    async def _mark_answered(self, batch: list[OutboxEntry], answer: dict[str, Any]) -> set[str]:
        """Only the scans the server answered for leave the outbox; the others go again (uploads are
        idempotent by scan id)."""
        results = answer.get("results")
        sent = {e.scan_id for e in batch}
        done = {
            r["scan_id"]
            for r in (results if isinstance(results, list) else [])
            if isinstance(r, dict) and r.get("scan_id") in sent
        }
        await self.writer(self.store.mark_uploaded, done, time.time())
        return done

    async def _upload_failed(self, batch: list[OutboxEntry], exc: Exception | None) -> None:
        await self.writer(self.store.note_upload_failure, [e.scan_id for e in batch])
        self._upload_backoff = min(60.0, max(1.0, self._upload_backoff * 2))
        self._next_upload = time.monotonic() + self._upload_backoff * (0.8 + 0.4 * random.random())
        if isinstance(exc, ServerError):
            await self._server_error(exc)
        elif isinstance(exc, Unreachable):
            await self._set_online(False, f"upload failed: {exc}")

    async def prune(self, now: float) -> int:
        """Forget uploaded scans older than ``outbox_keep_days`` at ``now`` (the server has them)."""
        keep_days = self.config.outbox_keep_days
        pruned = await self.writer(self.store.prune_uploaded, now - keep_days * 86400)
        if pruned:
            log.info("forgot %d scans uploaded more than %s days ago", pruned, keep_days)
        return pruned

    async def _prune_now(self) -> int:
        """The scheduler's prune job: it reads the clock, the pruning takes it."""
        return await self.prune(time.time())

    # --- live channel -------------------------------------------------------------------------
    async def live_loop(self) -> None:
        """Apply live pushes until the kiosk is revoked; reconnects soon, whatever happens.

        The channel does not replay what was pushed while it was down, so on every (re)connect the
        kiosk first catches up from its cursor with a pull, and only then goes online: a ticket
        deleted during a short drop is in the cache within a moment of the link's return. Retries
        come every second or so (a failed connect costs the server nothing).
        """
        while not self.status.revoked:
            try:
                caught_up = False
                async for message in self.client.live():
                    if not caught_up:
                        # The first message (the server's hello) says the channel is up, in which epoch.
                        if isinstance(message, dict) and message.get("type") == LIVE_HELLO:
                            async with self._pull_lock:  # not while a pull stores pages of the old epoch
                                await self._start_over_on_new_epoch(message.get("epoch"))
                        if not await self._catch_up():
                            break  # not caught up: reconnect and try again rather than trust the channel
                        caught_up = True
                    kind = message.get("type") if isinstance(message, dict) else None
                    if kind == LIVE_TICKETS and message.get("tickets"):
                        await self._apply_push(message)
                    elif kind == LIVE_REVOKED:
                        if await self._cut_off():
                            return
                        break  # enrolled again meanwhile: reconnect with the new token
            except ServerError as exc:
                await self._server_error(exc)
            except Unreachable as exc:
                await self._set_online(False, f"live channel down: {exc}")
            except Exception:  # noqa: BLE001 - the live channel must outlive any one failure
                log.exception("the live channel failed; reconnecting")
            await asyncio.sleep(LIVE_RETRY_S * (0.75 + 0.5 * random.random()))

    async def _apply_push(self, message: dict[str, Any]) -> None:
        """Store a live push; tickets new to the cache count on the screen at once, not at the next pull."""
        try:
            self.status.tickets += await self.writer(self.store.apply_push, message)
        except BadSyncData as exc:  # the pull brings the same changes, or says why not
            log.warning("ignored a live push this kiosk cannot use: %s", exc)

    async def _catch_up(self) -> bool:
        """Pull what changed since the cursor, then send the outbox; whether the pull succeeded."""
        self._last_pull_ok = False
        await self.pull()
        if self._last_pull_ok:
            asyncio.get_running_loop().create_task(self.upload(force=True))
        return self._last_pull_ok

    # --- state --------------------------------------------------------------------------------
    async def _server_error(self, exc: ServerError) -> None:
        # Only the server's own word (its error codes) cuts the kiosk off: a proxy's or captive
        # portal's 401/403 page says nothing about the kiosk and is logged like any other error.
        if exc.code in ("revoked_kiosk", "unauthorized"):
            log.error("the server no longer accepts this kiosk: %s", exc)
            await self._cut_off()
        else:
            log.warning("server error: %s", exc)

    async def _cut_off(self) -> bool:
        """The server refused this kiosk's token: revoked (True), unless the box was enrolled again while the
        agent ran, when it carries on with the new token and its live channel comes back (False)."""
        revoked = await mark_revoked(self.status, self.store, self.writer, self.client)
        if not revoked and self._live_task is not None and self._live_task.done():
            self._live_task = asyncio.get_running_loop().create_task(self.live_loop())
        await self.announce()
        return revoked

    async def _set_online(self, online: bool, why: str = "") -> None:
        status = self.status
        if status.online != online:
            log.info("now %s%s", "online" if online else "offline", f" ({why})" if why else "")
            status.online = online and not status.revoked
            await self.announce()

    # --- running ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Catch up with the server (pull, then send the outbox), then keep in step on a schedule and live."""
        await self.pull()
        try:
            await self.upload(force=True)
        except Exception:  # noqa: BLE001 - the kiosk must start all the same; the upload job tries again
            log.exception("could not send the outbox at start")
        config = self.config
        self.scheduler = AsyncIOScheduler()
        self.scheduler.add_job(
            self.pull, "interval", seconds=config.sync_interval_s, max_instances=1, coalesce=True, id="pull"
        )
        self.scheduler.add_job(
            self.upload, "interval", seconds=config.upload_interval_s, max_instances=1, coalesce=True, id="upload"
        )
        self.scheduler.add_job(self._prune_now, "interval", hours=6, max_instances=1, coalesce=True, id="prune")
        self.scheduler.start()
        self._live_task = asyncio.get_running_loop().create_task(self.live_loop())

    async def stop(self) -> None:
        if self.scheduler:
            self.scheduler.shutdown(wait=False)
        if self._live_task:
            self._live_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._live_task
