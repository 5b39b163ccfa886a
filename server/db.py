"""SQLite access that never blocks the event loop.

Reads run on a small pool of threads, each with its own connection; every write runs inside
``BEGIN IMMEDIATE`` so a write function is atomic, one at a time (SQLite allows one writer
anyway): on a dedicated writer thread (:meth:`Database.write`), or, for the redeem group commit's
short batches, on the event loop itself (:meth:`Database.write_here`). Service functions receive
a ``sqlite_utils.Database`` and use plain parameterised SQL through ``db.execute``/``db.query``
so the statements stay portable.

Several server processes may share the file (``workers`` > 1). Their writers take turns through
an ``flock`` on ``<db>-workers`` before ``BEGIN IMMEDIATE``: the kernel hands the lock over the
moment it is released, where SQLite's own busy handler would poll with sleeps of 1, 2, 5, 10…
ms. The same small file holds :class:`SharedCounters`, the cheap cross-process "this changed"
signal for caches. A lock held elsewhere for longer than the busy timeout raises
:class:`DatabaseBusy` (answered 503, never 500).

SQLite's automatic checkpoint runs inside whichever COMMIT crosses 1000 log pages, with the write
lock held: under load, most of the time the lock is held. Here it is off; a background thread
copies the log into the database file every ``CHECKPOINT_SECONDS`` without the lock. One process
does it for all that share the file (whichever holds the flock on ``<db>-checkpoint``; another
takes over if it exits). When writes pause, such a copy reaches the end of the log and the next
writer starts the log from the beginning again. Under writes that never pause, the log grows;
at ``CHECKPOINT_RESTART_BYTES`` the thread finishes the copy during a write turn of its own
(brief, but two fsyncs: the writers wait some milliseconds, which is why that is rare).

The copy runs at normal CPU priority. At the lowest (nice 19) it slowed the redeems' write turns
less while it ran, but on a box kept busy it was starved: the log, and what a power cut could
take back, grew without bound (tried 2026-11-24).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import functools
import logging
import mmap
import os
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


class DatabaseBusy(Exception):
    """Another process kept the database locked for longer than the busy timeout."""


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
    return isinstance(exc, OSError) and exc.errno in _STORAGE_ERRNOS


def connect(path: str | Path) -> sqlite_utils.Database:
    """Open a connection with the settings every Portgate connection uses."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=10)
    conn.execute(f"PRAGMA page_size={PAGE_SIZE}")  # takes effect only on a new, empty file (before WAL)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return sqlite_utils.Database(conn)


class SharedCounters:
    """Change counters shared by every process that opens one database, mapped into memory.

    A process that commits a change other processes cache (a kiosk revoked, say) bumps a counter
    after the commit; the others compare it on their hot path (a memory read: no system call, no
    query) and re-read the database when it moved. A bump is a plain read-modify-write: two at
    once may count as one, which is harmless because a reader only asks "has it changed since I
    last re-read?", and every bump follows its commit.
    """

    SLOTS = ("kiosks",)
    SIZE = 64  # room for 8 counters, so adding one never resizes a file others have mapped

    def __init__(self, fd: int) -> None:
        if os.fstat(fd).st_size < self.SIZE:
            os.ftruncate(fd, self.SIZE)  # growing zero-fills; two processes doing it at once agree
        self._map = mmap.mmap(fd, self.SIZE)
        # One aligned 8-byte load or store per access: never half-written (struct.pack_into
        # clears the bytes first, so another process could read 0 in between).
        self._slots = memoryview(self._map).cast("Q")
        self._index = {name: index for index, name in enumerate(self.SLOTS)}

    def get(self, name: str) -> int:
        return self._slots[self._index[name]]

    def bump(self, name: str) -> None:
        index = self._index[name]
        self._slots[index] = (self._slots[index] + 1) & 0xFFFF_FFFF_FFFF_FFFF

    def close(self) -> None:
        self._slots.release()
        self._map.close()


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
        self._write_mutex = threading.Lock()
        #: Cleared while the checkpoint thread waits for a turn: writers let it go first. A lock is
        #: not fair, so back-to-back writes could otherwise keep it waiting, and the log growing, forever.
        self._no_checkpoint_waiting = threading.Event()
        self._no_checkpoint_waiting.set()
        self._turn_waiter = ThreadPoolExecutor(1, thread_name_prefix="db-turn")
        # Opened per process (a forked child must open its own: flock belongs to the open file).
        self._shared_fd = os.open(f"{self.path}-workers", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        #: Cross-process change counters (see :class:`SharedCounters`).
        self.changes = SharedCounters(self._shared_fd)
        self._checkpoint_fd = os.open(f"{self.path}-checkpoint", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._stop_checkpoints = threading.Event()
        self._checkpointer = threading.Thread(target=self._checkpoint_loop, name="db-checkpoint", daemon=True)
        self._checkpointer.start()

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
            db.execute("PRAGMA wal_autocheckpoint=0")  # the checkpoint thread does it, outside the lock
            db.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
            self._local.db = db
            with self._lock:
                self._connections.append(db)
        return db

    def _checkpoint_loop(self) -> None:
        db = None
        failing = False
        elected = False
        while not self._stop_checkpoints.wait(CHECKPOINT_SECONDS):
            try:
                if not elected:
                    fcntl.flock(self._checkpoint_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    elected = True
            except BlockingIOError:
                continue  # another process checkpoints this database
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
            db.conn.close()

    def checkpoint(self, db: sqlite_utils.Database) -> None:
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
    # A thread mutex orders this process's writers (the writer thread, the event loop's group
    # commit); the flock orders the processes. SQLite's own lock stays underneath for anything else.

    def _take_turn(self, *, first: bool = False) -> None:
        if not first:
            self._no_checkpoint_waiting.wait()
        self._write_mutex.acquire()
        try:
            fcntl.flock(self._shared_fd, fcntl.LOCK_EX)
        except BaseException:
            self._write_mutex.release()
            raise

    def _try_turn(self) -> bool:
        if not self._no_checkpoint_waiting.is_set() or not self._write_mutex.acquire(blocking=False):
            return False
        try:
            fcntl.flock(self._shared_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._write_mutex.release()
            return False
        return True

    def end_write_turn(self) -> None:
        """Give the write turn back (after :meth:`write_turn` and :meth:`write_here`)."""
        fcntl.flock(self._shared_fd, fcntl.LOCK_UN)
        self._write_mutex.release()

    def _hand_back_turn(self, taken: asyncio.Future[None]) -> None:
        """A turn taken for a waiter that was cancelled: give it straight back."""
        if not taken.cancelled() and taken.exception() is None:
            self.end_write_turn()

    async def write_turn(self) -> None:
        """Wait for this process's turn to write without blocking the event loop."""
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

        For short writes on the event loop (the redeem group commit): no thread hop, and no wait
        for the GIL while the other processes wait for the lock. It never waits for SQLite's own
        lock either: if a process outside the server holds it, this raises :class:`DatabaseBusy`
        at once, and the caller retries with :meth:`write`, which waits on the writer thread.
        """
        db = getattr(self._local, "here", None)
        if db is None:
            db = self._conn()
            db.execute("PRAGMA busy_timeout=0")  # this thread's connection is used by write_here only
            self._local.here = db
        return self._transaction(db, functools.partial(_bind_after_db, fn, args, {}))

    def _transaction(self, db: sqlite_utils.Database, fn: Callable[..., T]) -> T:
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
            if db.conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                if db.conn.in_transaction:
                    self._forget(db)
            raise
        return result

    def _forget(self, db: sqlite_utils.Database) -> None:
        """Close a connection that could not leave its transaction; its thread opens a new one."""
        for name in ("db", "here"):
            if getattr(self._local, name, None) is db:
                delattr(self._local, name)
        with self._lock:
            if db in self._connections:
                self._connections.remove(db)
        with contextlib.suppress(sqlite3.Error):
            db.conn.close()

    def _run_write(self, fn: Callable[..., T]) -> T:
        db = self._conn()
        self._take_turn()
        try:
            return self._transaction(db, fn)
        finally:
            self.end_write_turn()

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
        self._stop_checkpoints.set()
        if self._checkpointer.is_alive():
            self._checkpointer.join()
        self._readers.shutdown(wait=True)
        self._writer.shutdown(wait=True)
        self._turn_waiter.shutdown(wait=True)
        with self._lock:
            for db in self._connections:
                db.conn.close()
            self._connections.clear()
        if self._shared_fd >= 0:
            self.changes.close()
            os.close(self._shared_fd)
            self._shared_fd = -1
        if self._checkpoint_fd >= 0:
            os.close(self._checkpoint_fd)  # releases the election lock
            self._checkpoint_fd = -1


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
