"""Database access that never blocks the event loop, on SQLite or PostgreSQL.

``Database(url)`` opens the engine ``database_url`` names: ``sqlite:///path`` (or a plain path)
gives :class:`server.db_sqlite.SqliteDatabase`, ``postgresql://…`` gives
:class:`server.db_postgres.PostgresDatabase`. Both are the same thread-backed façade: service
functions are plain synchronous functions that receive a connection
(:class:`server.sql.Connection`) and run parameterised SQL; :meth:`Database.read` runs one on a
reader thread, :meth:`Database.write` in one transaction on the writer thread (any exception
rolls it back). Where the engines' SQL differs, it differs in :mod:`server.sql`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from server.sql import Connection

T = TypeVar("T")


class DatabaseBusy(Exception):
    """The database could not take the request now (locked too long, or unreachable): answered 503."""


def is_busy(exc: BaseException) -> bool:
    """True for SQLite's "database is locked" / "database table is locked" errors."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc)


_STORAGE_SQLITE_CODES = (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN)
_STORAGE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO)


def is_storage_failure(exc: BaseException) -> bool:
    """True when the disk under the data failed us: full, read-only, gone or erroring.

    Not a fault of the request nor of our code: answered 503 ("try again later"), so a kiosk
    keeps its local verdict and retries instead of treating it as a refusal.
    """
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        return code is not None and code & 0xFF in _STORAGE_SQLITE_CODES
    # PostgreSQL's class 53 (insufficient resources: disk full, out of memory) and 58 (I/O error).
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate.startswith(("53", "58"))
    return isinstance(exc, OSError) and exc.errno in _STORAGE_ERRNOS


def is_postgresql(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def sqlite_path(url: str | Path) -> Path:
    """The file a ``sqlite:///path`` URL (or a plain path) names."""
    text = str(url)
    return Path(text.removeprefix("sqlite://")) if text.startswith("sqlite://") else Path(text)


class Database:
    """The engine-neutral façade; ``Database(url_or_path, readers=…, pool_size=…)`` opens the right engine."""

    #: True when short writes may run on the event loop itself (:meth:`write_here`: SQLite's
    #: group commit); PostgreSQL's go to a thread, since its commits wait on the network.
    writes_on_loop = False
    _readers: Any
    _writer: Any

    def __new__(cls, target: str | Path = "", *args: Any, **kwargs: Any) -> Database:
        if cls is not Database:
            return super().__new__(cls)
        if is_postgresql(str(target)):
            from server.db_postgres import PostgresDatabase

            return super().__new__(PostgresDatabase)
        from server.db_sqlite import SqliteDatabase

        return super().__new__(SqliteDatabase)

    @property
    def url(self) -> str:
        raise NotImplementedError

    @property
    def dialect_name(self) -> str:
        return "postgresql" if is_postgresql(self.url) else "sqlite"

    def migrate(self) -> list[int]:
        raise NotImplementedError

    def _run_read(self, fn: Callable[[Connection], T]) -> T:
        raise NotImplementedError

    def _run_write(self, fn: Callable[[Connection], T]) -> T:
        raise NotImplementedError

    async def write_turn(self) -> None:
        """Wait for the turn to run :meth:`write_here` (engines that write on the loop)."""
        raise NotImplementedError

    def end_write_turn(self) -> None:
        raise NotImplementedError

    def write_here(self, fn: Callable[..., T], *args: Any) -> T:
        raise NotImplementedError

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(db, *args, **kwargs)`` on a reader thread."""
        call = functools.partial(bind_after_db, fn, args, kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._readers, functools.partial(self._run_read, call))

    async def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(db, *args, **kwargs)`` atomically on the writer thread; any exception rolls back."""
        call = functools.partial(bind_after_db, fn, args, kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._writer, functools.partial(self._run_write, call))

    def write_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Blocking variant of :meth:`write` for start-up tasks and command-line tools."""
        call = functools.partial(bind_after_db, fn, args, kwargs)
        return self._writer.submit(self._run_write, call).result()

    def read_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Blocking variant of :meth:`read` for command-line tools and tests."""
        call = functools.partial(bind_after_db, fn, args, kwargs)
        return self._readers.submit(self._run_read, call).result()

    def close(self) -> None:
        raise NotImplementedError


def bind_after_db(fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any], db: Any) -> T:
    return fn(db, *args, **kwargs)


def lock_for_update(db: Connection, sql: str, params: Any = ()) -> None:
    """Lock the rows ``sql`` (a plain SELECT) reads until COMMIT, on PostgreSQL.

    For a read that decides a write: another node's transaction deciding on the same rows waits
    for this one and then sees what it wrote. SQLite's write transactions run one at a time anyway.
    """
    if db.dialect.for_update:
        db.execute(sql + db.dialect.for_update, params)


def one(db: Connection, sql: str, params: Any = ()) -> dict[str, Any] | None:
    """First row of a query as a dict, or None."""
    for row in db.query(sql, params):
        return row
    return None


def scalar(db: Connection, sql: str, params: Any = ()) -> Any:
    """First column of the first row, or None."""
    row = db.execute(sql, params).fetchone()
    return row[0] if row else None


@contextlib.contextmanager
def direct_connection(url: str | Path) -> Iterator[Any]:
    """One connection outside the façade (command-line tools, seeders, tests), in autocommit; closed after.

    The same connection classes the engines use, so the same SQL runs; ``db.execute(db.dialect.begin)``
    … ``COMMIT`` makes a transaction.
    """
    if is_postgresql(str(url)):
        from server.db_postgres import connect_direct

        with connect_direct(str(url)) as pg:
            yield pg
        return
    db = connect(url)
    try:
        yield db
    finally:
        db.close()


def connect(path: str | Path) -> Any:
    """A SQLite connection with Portgate's settings (see :func:`server.db_sqlite.connect`)."""
    from server.db_sqlite import connect as sqlite_connect

    return sqlite_connect(sqlite_path(path))
