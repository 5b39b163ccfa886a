"""SQLite access that never blocks the event loop.

Reads run on a small pool of threads, each with its own connection; every write runs on one
dedicated writer thread inside ``BEGIN IMMEDIATE`` so a write function is atomic and writes are
serialised (SQLite allows one writer anyway). Service functions receive a ``sqlite_utils.Database``
and use plain parameterised SQL through ``db.execute``/``db.query`` so the statements stay portable.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from server.migrations import apply_migrations

log = logging.getLogger(__name__)
T = TypeVar("T")


def connect(path: str | Path) -> sqlite_utils.Database:
    """Open a connection with the settings every Portgate connection uses."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=10)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=10000")
    return sqlite_utils.Database(conn)


class Database:
    """Thread-backed async façade over one SQLite file."""

    def __init__(self, path: str | Path, readers: int = 4) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: list[sqlite_utils.Database] = []
        self._lock = threading.Lock()
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="db-read")
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="db-write")

    def migrate(self) -> list[int]:
        """Apply pending numbered migrations; returns the numbers applied."""
        db = connect(self.path)
        try:
            return apply_migrations(db)
        finally:
            db.conn.close()

    def _conn(self) -> sqlite_utils.Database:
        db = getattr(self._local, "db", None)
        if db is None:
            db = connect(self.path)
            self._local.db = db
            with self._lock:
                self._connections.append(db)
        return db

    def _run_read(self, fn: Callable[..., T]) -> T:
        return fn(self._conn())

    def _run_write(self, fn: Callable[..., T]) -> T:
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            result = fn(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(db, *args, **kwargs)`` on a reader thread."""
        call = functools.partial(_bind_after_db, fn, args, kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._readers, functools.partial(self._run_read, call))

    async def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(db, *args, **kwargs)`` atomically on the writer thread; any exception rolls back."""
        call = functools.partial(_bind_after_db, fn, args, kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._writer, functools.partial(self._run_write, call))

    def write_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Blocking variant of :meth:`write` for start-up tasks and command-line tools."""
        call = functools.partial(_bind_after_db, fn, args, kwargs)
        return self._writer.submit(self._run_write, call).result()

    def close(self) -> None:
        self._readers.shutdown(wait=True)
        self._writer.shutdown(wait=True)
        with self._lock:
            for db in self._connections:
                db.conn.close()
            self._connections.clear()


def _bind_after_db(fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any], db: Any) -> T:
    return fn(db, *args, **kwargs)


def one(db: sqlite_utils.Database, sql: str, params: Any = ()) -> dict[str, Any] | None:
    """First row of a query as a dict, or None."""
    for row in db.query(sql, params):
        return row
    return None


def scalar(db: sqlite_utils.Database, sql: str, params: Any = ()) -> Any:
    """First column of the first row, or None."""
    row = db.execute(sql, params).fetchone()
    return row[0] if row else None
