"""Scheduled jobs that must not run on two nodes at once: a PostgreSQL advisory lock per job.

Every node runs the same job loops (mail outbox delivery, clean-ups), so that any one may stop
without the work stopping. Around each run a node takes ``pg_try_advisory_lock`` on the job's
name on a connection of its own; a node that does not get it skips that run, the node holding it
does the work. If the node dies mid-run, its connection ends and PostgreSQL releases the lock,
so the next run elsewhere takes over. On SQLite there is one process: a job simply runs.

One :class:`JobLocks` serves one event loop (its connection belongs to that loop).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import psycopg

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Returned by :meth:`JobLocks.run` when another node holds the job's lock (it runs it there), or
#: when the database cannot be reached.
SKIPPED = object()


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for a job name (the same on every node)."""
    digest = hashlib.blake2b(f"portgate-job:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class JobLocks:
    """Runs a job's pass only while holding its lock; without a PostgreSQL URL, runs it plainly."""

    def __init__(self, url: str | None) -> None:
        self._url = url
        self._conn: psycopg.AsyncConnection | None = None

    async def run(self, name: str, job: Callable[[], Awaitable[T]]) -> T | object:
        """``await job()`` if no other node runs ``name`` now; else :data:`SKIPPED`."""
        if self._url is None:
            return await job()
        key = lock_key(name)
        try:
            conn = await self._connection()
            cursor = await conn.execute("SELECT pg_try_advisory_lock(%s)", (key,))
            row = await cursor.fetchone()
        except psycopg.OperationalError as exc:
            # The database is unreachable (restarting, failing over): nobody runs this pass; the
            # next one connects again (with a multi-host URL, to whichever host accepts writes).
            log.warning("job %s skipped: %s", name, exc)
            await self.close()
            return SKIPPED
        if not (row and row[0]):
            return SKIPPED
        try:
            return await job()
        finally:
            await self._unlock(conn, key)

    async def _connection(self) -> psycopg.AsyncConnection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            assert self._url is not None
            await self.close()
            self._conn = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
        return self._conn

    async def _unlock(self, conn: psycopg.AsyncConnection, key: int) -> None:
        try:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
        except psycopg.Error:
            # The connection broke: its session ended, and the lock with it. Start afresh next run.
            log.warning("job lock connection lost; the lock went with it")
            await self.close()

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                await self._conn.close()
            self._conn = None
