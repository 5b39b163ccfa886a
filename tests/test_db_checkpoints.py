"""SQLite's write-ahead log stays bounded: it starts over whenever writes pause (the SQLite engine's own
checkpoint thread; PostgreSQL has none of this, so these tests are about the SQLite engine alone)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from server import db_sqlite as database_module
from server.db import Database

INTERVAL = 0.1
ROWS = 50
#: Generous: on a quiet box the log starts over three times within a second of writes.
STARTS_WITHIN_SECONDS = 60
#: A log this long means the checkpoint thread never finished: a start-over came by 50 MB on a quiet box,
#: by 90 MB with both cores kept busy (without the write turn, the log reaches this in 3 s).
UNBOUNDED_LOG_BYTES = 500_000_000


def _burst(database: Database) -> None:
    for _ in range(40):
        database.write_sync(lambda db: db.execute("INSERT INTO blobs VALUES (?)", (os.urandom(20_000),)))


def _log_size(path: Path) -> int:
    return Path(f"{path}-wal").stat().st_size


def _log_generation(path: Path) -> int:
    """The write-ahead log header's checkpoint sequence number: it changes each time the log starts over."""
    with Path(f"{path}-wal").open("rb") as fh:
        return int.from_bytes(fh.read(16)[12:16], "big")


def test_the_log_starts_over_after_a_pause(tmp_path, monkeypatch):
    monkeypatch.setattr(database_module, "CHECKPOINT_SECONDS", INTERVAL)  # a quicker test, same code
    path = tmp_path / "portgate.db"
    database = Database(path)
    try:
        database.write_sync(lambda db: db.execute("CREATE TABLE blobs (b BLOB)"))
        _burst(database)
        one_burst = _log_size(path)
        assert one_burst > 800_000
        for _ in range(4):
            time.sleep(INTERVAL * 5)  # writes pause: the checkpoint reaches the end of the log
            _burst(database)
            assert _log_size(path) < one_burst * 1.3  # written from the start again, not appended
        count = database.write_sync(lambda db: db.execute("SELECT COUNT(*) FROM blobs").fetchone()[0])
        assert count == 40 * 5
    finally:
        database.close()


def test_under_writes_that_never_pause_the_log_still_starts_over(tmp_path, monkeypatch):
    """A long log is finished during a write turn, so it cannot grow without end: writes go on back to back,
    and the log file still starts over, and shrinks back to its size limit, again and again."""
    monkeypatch.setattr(database_module, "CHECKPOINT_SECONDS", INTERVAL / 2)
    monkeypatch.setattr(database_module, "CHECKPOINT_RESTART_BYTES", 2_000_000)
    monkeypatch.setattr(database_module, "JOURNAL_SIZE_LIMIT", 1_000_000)
    path = tmp_path / "portgate.db"
    database = Database(path)
    try:
        database.write_sync(lambda db: db.execute("CREATE TABLE blobs (id INTEGER PRIMARY KEY, b BLOB)"))
        for row in range(ROWS):
            database.write_sync(lambda db, row=row: db.execute("INSERT INTO blobs VALUES (?, ?)", (row, b"")))
        # A disk file that grows and never shrinks is what a user would see if the thread could not
        # finish a checkpoint while writes go on.
        starts, shrinks = _write_until_the_log_starts_over(database, path, times=3)
        assert starts >= 3 and shrinks >= 3, (starts, shrinks)
    finally:
        database.close()


def _rewrite_row(db, row: int) -> None:
    db.execute("UPDATE blobs SET b = ? WHERE id = ?", (os.urandom(20_000), row))


def _write_until_the_log_starts_over(database: Database, path: Path, times: int) -> tuple[int, int]:
    """Rewrite rows back to back until the log has started over, its file cut back to the size limit,
    ``times`` times: (starts, shrinks). A start when the log is short (a pass that reached its end while
    the writer was between two writes) leaves the file as it is, so the two are counted apart.

    It waits for what it looks for, however slowly a busy box lets the checkpoint thread copy (the
    test used to count starts within a fixed number of writes, under a second's worth on a quiet
    box, and the whole suite's load made that too short). It gives up at a deadline or at a log
    far longer than any start-over leaves behind. Rows are rewritten, not added, so the database
    file stays small whatever the number of writes.
    """
    deadline = time.monotonic() + STARTS_WITHIN_SECONDS
    generation, size = _log_generation(path), _log_size(path)
    starts = shrinks = writes = 0
    while min(starts, shrinks) < times:
        assert time.monotonic() < deadline, (
            f"{starts} starts, {shrinks} shrinks in {STARTS_WITHIN_SECONDS} s, {writes} writes"
        )
        assert size < UNBOUNDED_LOG_BYTES, f"the log reached {size} bytes after {starts} starts"
        database.write_sync(_rewrite_row, writes % ROWS)
        writes += 1
        previous_size, size = size, _log_size(path)
        shrinks += size < previous_size
        previous_generation, generation = generation, _log_generation(path)
        starts += generation != previous_generation
    return starts, shrinks
