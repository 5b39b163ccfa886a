"""The SQLite engine: one file, one server process.

Reads run on a small pool of threads, each with its own connection; every write runs inside
``BEGIN IMMEDIATE`` so a write function is atomic, one at a time (SQLite allows one writer
anyway): on a dedicated writer thread (:meth:`SqliteDatabase.write`), or, for the redeem group
commit's short batches, on the event loop itself (:meth:`SqliteDatabase.write_here`). An
in-process mutex orders the two; a process outside the server (a tool, a seeder) holding SQLite's
lock for longer than the busy timeout raises :class:`DatabaseBusy` (answered 503, never 500).

SQLite's automatic checkpoint runs inside whichever COMMIT crosses 1000 log pages, with the write
lock held: under load, most of the time the lock is held. Here it is off; a background thread
copies the log into the database file every ``CHECKPOINT_SECONDS`` without the lock. When writes
pause, such a copy reaches the end of the log and the next writer starts the log from the
beginning again. Under writes that never pause, the log grows; at ``CHECKPOINT_RESTART_BYTES``
the thread finishes the copy during a write turn of its own (brief, but two fsyncs: the writers
wait some milliseconds, which is why that is rare).

The copy runs at normal CPU priority. At the lowest (nice 19) it slowed the redeems' write turns
less while it ran, but on a box kept busy it was starved: the log, and what a power cut could
take back, grew without bound (tried 2026-11-24).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from server.db import Database, DatabaseBusy, bind_after_db, is_busy, sqlite_path
from server.sql import SQLITE, row_maker

log = logging.getLogger(__name__)
T = TypeVar("T")

BUSY_TIMEOUT_MS = 10_000
#: Database page size for new files. A redeem changes a few rows scattered over the file (its
#: ticket, its use, and the scan log's indexes), and every page it changes is written whole to
#: the log at COMMIT and again at checkpoint: 2 KiB pages instead of SQLite's 4 KiB cut the
#: redeem's share of the write turn by about a quarter (``bench.redeem``) while full scans
#: (first sync, exports) read the same bytes.
PAGE_SIZE = 2048
#: How often a background thread copies the write-ahead log back into the database file. Each
#: pass also fsyncs the log, so (with ``synchronous=NORMAL``) it bounds what a power cut could
#: take back to about a second of commits; more often costs the redeem path (every page copied
#: is two system calls: at 0.25 s, ~15 % of the server's CPU in ``bench.redeem``).
CHECKPOINT_SECONDS = 1.0
#: Log length from which that thread completes a checkpoint during a write turn: about once in
#: 15 s of the heaviest sustained load (``bench.redeem``), never when writes pause now and then.
CHECKPOINT_RESTART_BYTES = 256 * 1024 * 1024
#: A log longer than this is truncated to it when it starts again from the beginning.
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024


class SqliteConnection:
    """A ``sqlite3`` connection as services see it (:class:`server.sql.Connection`)."""

    dialect = SQLITE

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn  # for SQLite-only tools: PRAGMAs, the online backup, trace callbacks

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        cursor = self.conn.execute(sql, params)
        if cursor.description is not None:
            # One row class per column list (cached): rows are tuples readable by name too.
            cursor.row_factory = functools.partial(_row_for, row_maker(tuple(d[0] for d in cursor.description)))
        return cursor

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> sqlite3.Cursor:
        return self.conn.executemany(sql, rows)

    def query(self, sql: str, params: Any = ()) -> Iterator[dict[str, Any]]:
        cursor = self.conn.execute(sql, params)
        names = [d[0] for d in cursor.description]
        for values in cursor:
            yield dict(zip(names, values, strict=True))

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    def close(self) -> None:
        self.conn.close()


def _row_for(make: Callable[[Sequence[Any]], Any], _cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> Any:
    return make(values)


def connect(path: str | Path) -> SqliteConnection:
    """Open a connection with the settings every Portgate connection uses."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=10)
    conn.execute(f"PRAGMA page_size={PAGE_SIZE}")  # takes effect only on a new, empty file (before WAL)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return SqliteConnection(conn)


class SqliteDatabase(Database):
    """Thread-backed async façade over one SQLite file."""

    url_scheme = "sqlite"
    writes_on_loop = True

    def __init__(self, path: str | Path, readers: int = 4, **_ignored: Any) -> None:
        super().__init__()
        self.path = sqlite_path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: list[SqliteConnection] = []
        self._lock = threading.Lock()
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="db-read")
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="db-write")
        self._write_mutex = threading.Lock()
        #: Cleared while the checkpoint thread waits for a turn: writers let it go first. A lock is
        #: not fair, so back-to-back writes could otherwise keep it waiting, and the log growing, forever.
        self._no_checkpoint_waiting = threading.Event()
        self._no_checkpoint_waiting.set()
        self._turn_waiter = ThreadPoolExecutor(1, thread_name_prefix="db-turn")
        self._stop_checkpoints = threading.Event()
        self._checkpointer = threading.Thread(target=self._checkpoint_loop, name="db-checkpoint", daemon=True)
        self._checkpointer.start()

    @property
    def url(self) -> str:
        return f"sqlite://{self.path.absolute()}"

    def migrate(self) -> list[int]:
        """Apply pending numbered migrations; returns the numbers applied."""
        from server.migrations import apply_migrations

        db = connect(self.path)
        try:
            return apply_migrations(db)
        finally:
            db.close()

    def _conn(self) -> SqliteConnection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = connect(self.path)
            db.execute("PRAGMA wal_autocheckpoint=0")  # the checkpoint thread does it, outside the lock
            db.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
            self._local.db = db
            with self._lock:
                self._connections.append(db)
        return db

    def _checkpoint_loop(self) -> None:
        db = None
        failing = False
        while not self._stop_checkpoints.wait(CHECKPOINT_SECONDS):
            try:
                if db is None:
                    db = connect(self.path)
                    db.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
                self.checkpoint(db)
                failing = False
            except sqlite3.Error:
                if not failing:
                    log.exception("checkpoint failed; retrying")
                failing = True
        if db is not None:
            db.close()

    def checkpoint(self, db: SqliteConnection) -> None:
        """Copy the write-ahead log into the database file; complete it when the log is long."""
        # PASSIVE waits for nobody: writers go on appending meanwhile, so under steady load it
        # never catches up with the end of the log, and SQLite only starts the log over once a
        # checkpoint has reached its end. So a long log gets another pass, still without the
        # lock (it copies what was written during the first), then a last one during a write
        # turn, which copies only the few pages written since.
        _busy, pages, _copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if pages * db.execute("PRAGMA page_size").fetchone()[0] >= CHECKPOINT_RESTART_BYTES:
            db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self._no_checkpoint_waiting.clear()
            try:
                self._take_turn(first=True)
            finally:
                self._no_checkpoint_waiting.set()
            try:
                db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                self.end_write_turn()

    def _run_read(self, fn: Callable[..., T]) -> T:
        return fn(self._conn())

    # --- whose turn it is to write ----------------------------------------------------------
    # A thread mutex orders the writers (the writer thread, the event loop's group commit);
    # SQLite's own lock stays underneath for anything outside the server.

    def _take_turn(self, *, first: bool = False) -> None:
        if not first:
            self._no_checkpoint_waiting.wait()
        self._write_mutex.acquire()

    def _try_turn(self) -> bool:
        return self._no_checkpoint_waiting.is_set() and self._write_mutex.acquire(blocking=False)

    def end_write_turn(self) -> None:
        """Give the write turn back (after :meth:`write_turn` and :meth:`write_here`)."""
        self._write_mutex.release()

    def _hand_back_turn(self, taken: asyncio.Future[None]) -> None:
        """A turn taken for a waiter that was cancelled: give it straight back."""
        if not taken.cancelled() and taken.exception() is None:
            self.end_write_turn()

    async def write_turn(self) -> None:
        """Wait for the turn to write without blocking the event loop."""
        if self._try_turn():
            return
        waiting = asyncio.get_running_loop().run_in_executor(self._turn_waiter, self._take_turn)
        try:
            await asyncio.shield(waiting)
        except asyncio.CancelledError:
            # The thread still gets the turn; hand it straight back.
            waiting.add_done_callback(self._hand_back_turn)
            raise

    def write_here(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(db, *args)`` in one write transaction on the calling thread, during its turn.

        For short writes on the event loop (the redeem group commit): no thread hop. It never
        waits for SQLite's own lock: if a process outside the server holds it, this raises
        :class:`DatabaseBusy` at once, and the caller retries with :meth:`write`, which waits on
        the writer thread.
        """
        db = getattr(self._local, "here", None)
        if db is None:
            db = self._conn()
            db.execute("PRAGMA busy_timeout=0")  # this thread's connection is used by write_here only
            self._local.here = db
        return self._transaction(db, functools.partial(bind_after_db, fn, args, {}))

    def _transaction(self, db: SqliteConnection, fn: Callable[..., T]) -> T:
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            # Only a process outside the server (a tool, a bench seeder) can hold it this long.
            if is_busy(exc):
                raise DatabaseBusy(str(exc)) from exc
            raise
        try:
            result = fn(db)
            db.execute("COMMIT")
        except BaseException:
            # A failed COMMIT (disk full) may leave the transaction open; a connection left
            # inside one could never begin another.
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                if db.in_transaction:
                    self._forget(db)
            raise
        return result

    def _forget(self, db: SqliteConnection) -> None:
        """Close a connection that could not leave its transaction; its thread opens a new one."""
        for name in ("db", "here"):
            if getattr(self._local, name, None) is db:
                delattr(self._local, name)
        with self._lock:
            if db in self._connections:
                self._connections.remove(db)
        with contextlib.suppress(sqlite3.Error):
            db.close()

    def _run_write(self, fn: Callable[..., T]) -> T:
        db = self._conn()
        self._take_turn()
        try:
            return self._transaction(db, fn)
        finally:
            self.end_write_turn()

    def close(self) -> None:
        self._stop_checkpoints.set()
        if self._checkpointer.is_alive():
            self._checkpointer.join()
        self._readers.shutdown(wait=True)
        self._writer.shutdown(wait=True)
        self._turn_waiter.shutdown(wait=True)
        with self._lock:
            for db in self._connections:
                db.close()
            self._connections.clear()
