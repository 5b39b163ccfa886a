"""Group commit for online redeems, and a thread pool for checking code signatures.

Under load, the cost of a redeem is mostly its COMMIT (the WAL write), not its statements. So
redeems that arrive while a transaction is running wait for it and then go together in the next
one, each inside its own SAVEPOINT: every redeem stays atomic and they are still decided one
after another on the single writer thread, so single use holds exactly as with one transaction
per redeem. A lone redeem is not delayed: it goes at once.

Verifying an Ed25519 signature takes 150-250 µs of C code that releases the GIL, as long as
the rest of a redeem on the writer thread, which is the one serial resource. So signatures are
checked on a small pool of threads: an online redeem's check starts as the request arrives and
the writer picks up its result (no extra wake-up of the event loop); an offline upload's codes
are checked there before the upload is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from server.db import Database

log = logging.getLogger(__name__)

MAX_BATCH = 200
CODE_CHECK_THREADS = 2


class GroupCommit:
    """Runs calls on the database writer, batching those that queue up.

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
                batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
                try:
                    outcomes = await self._db.write(self._batch_fn, [args for args, _ in batch])
                except Exception as exc:  # noqa: BLE001 - the whole transaction failed: tell everyone
                    log.exception("a redeem batch failed")
                    outcomes = [exc] * len(batch)
                for (_args, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():
                        continue
                    if isinstance(outcome, BaseException):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self._drainer = None

    async def close(self) -> None:
        """Wait for queued calls to be written (at shutdown, before the database closes)."""
        if self._drainer is not None:
            with contextlib.suppress(Exception):
                await self._drainer


REDEEMS = web.AppKey("gate_redeems", GroupCommit)
CODE_CHECKS = web.AppKey("gate_code_checks", ThreadPoolExecutor)
