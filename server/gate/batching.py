"""Group commit for online redeems, run on the event loop during this process's write turn.

Under load, the cost of a redeem is mostly its COMMIT (the WAL write), not its statements. So
redeems that arrive while a transaction is running wait for it and then go together in the next
one, each inside its own SAVEPOINT: every redeem stays atomic and they are still decided one
after another in one writer, so single use holds exactly as with one transaction per redeem. A
lone redeem is not delayed: it goes at once.

On SQLite a batch holds the write turn (``Database.write_turn``) briefly: on a thread of its own
it held it about twice as long as its CPU time, waiting to get the GIL back from the event loop
after each statement; so the batch runs on the event loop itself (``Database.write_here``), a
few milliseconds without a thread hop. Only waiting for the turn happens on a thread. When a
process outside the server holds SQLite's lock, the batch is handed to the writer thread, which
waits for it, so the loop never blocks on that. On PostgreSQL every batch goes to the writer
thread: its statements and COMMIT wait on the network (``Database.writes_on_loop`` is False).

A full code is parsed by the handler before its redeem is queued; in the batch it is matched
against the digest stored when its ticket was printed (a hash, on the row the redeem reads
anyway). Only a code that does not match (unprinted, forged) has its signature checked there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from server.db import Database, DatabaseBusy

log = logging.getLogger(__name__)

MAX_BATCH = 200
#: Runs of a batch that PostgreSQL fails as a deadlock or serialization victim, before answering 503.
LOCK_RACE_ATTEMPTS = 3
#: SQLSTATEs of a transaction rolled back for another's sake: serialization failure, deadlock.
_LOCK_RACES = frozenset({"40001", "40P01"})
#: Threads that check the signatures of offline uploads' codes (many at once, off the loop).
CODE_CHECK_THREADS = 2


class GroupCommit:
    """Runs calls as database writes, batching those that queue up.

    ``batch_fn(db, [args, ...])`` runs in one write transaction and returns one outcome per call
    (an exception instance for a call that failed), e.g. :func:`server.gate.redeem.redeem_batch`.
    """

    def __init__(self, db: Database, batch_fn: Callable[..., list[Any]], max_batch: int = MAX_BATCH) -> None:
        self._db = db
        self._batch_fn = batch_fn
        self._max_batch = max_batch
        self._queue: list[tuple[tuple, asyncio.Future]] = []
        self._drainer: asyncio.Task | None = None

    async def __call__(self, *args: Any) -> Any:
        future = asyncio.get_running_loop().create_future()
        self._queue.append((args, future))
        if self._drainer is None:
            self._drainer = asyncio.create_task(self._drain())
        # A caller that goes away (client disconnect) cancels only its wait, never the write: the
        # kiosk's retry with the same scan id gets the committed answer back.
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                on_loop = self._db.writes_on_loop
                if on_loop:
                    await self._db.write_turn()
                # Taken once the turn is ours: whatever queued while waiting goes in this batch.
                batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
                calls = [args for args, _ in batch]
                outcomes = self._on_loop(calls) if on_loop else None
                if outcomes is None:
                    outcomes = await self._on_writer_thread(calls)
                for (_args, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():
                        continue
                    if isinstance(outcome, BaseException):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self._drainer = None

    def _on_loop(self, calls: list[tuple]) -> list[Any] | None:
        """The batch on the event loop during the turn just taken; None when SQLite's lock is held elsewhere."""
        try:
            try:
                return self._db.write_here(self._batch_fn, calls)
            finally:
                self._db.end_write_turn()
        except DatabaseBusy:
            return None
        except Exception as exc:  # noqa: BLE001 - the whole transaction failed: tell everyone
            log.exception("a redeem batch failed")
            return [exc] * len(calls)

    async def _on_writer_thread(self, calls: list[tuple]) -> list[Any]:
        """The batch on the writer thread: always on PostgreSQL (its commit waits on the network), and on
        SQLite when another process holds its lock (the thread waits for it, up to the busy timeout).

        A batch PostgreSQL chose to fail for another transaction's sake (a deadlock: say a staff
        deletion holds the sync counter and waits for a ticket the batch locked) wrote nothing, and
        runs again at once: the kiosk never sees it.
        """
        for attempt in range(1, LOCK_RACE_ATTEMPTS + 1):
            try:
                return await self._db.write(self._batch_fn, calls)
            except DatabaseBusy as exc:
                if attempt < LOCK_RACE_ATTEMPTS and _lost_a_lock_race(exc):
                    log.info("a redeem batch lost a lock race (%s); running it again", exc.__cause__)
                    continue
                return [exc] * len(calls)  # answered 503: the kiosk retries with the same scan id
            except Exception as exc:  # noqa: BLE001 - the whole transaction failed: tell everyone
                log.exception("a redeem batch failed")
                return [exc] * len(calls)
        raise AssertionError("unreachable: the last attempt returns")

    async def close(self) -> None:
        """Wait for queued calls to be written (at shutdown, before the database closes)."""
        if self._drainer is not None:
            with contextlib.suppress(Exception):
                await self._drainer


REDEEMS = web.AppKey("gate_redeems", GroupCommit)
CODE_CHECKS = web.AppKey("gate_code_checks", ThreadPoolExecutor)


def _lost_a_lock_race(exc: DatabaseBusy) -> bool:
    """Whether PostgreSQL rolled the transaction back for another's sake (nothing written; safe to run again)."""
    return getattr(exc.__cause__, "sqlstate", None) in _LOCK_RACES
