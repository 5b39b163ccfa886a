"""The write-ahead log stays bounded: it starts over whenever writes pause, whichever process checkpoints."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from server import db as database_module
from server.db import Database

INTERVAL = 0.1


def _burst(database: Database) -> None:
    for _ in range(40):
        database.write_sync(lambda db: db.execute("INSERT INTO blobs VALUES (?)", (os.urandom(20_000),)))


def _log_size(path: Path) -> int:
    return Path(f"{path}-wal").stat().st_size


def test_the_log_starts_over_after_a_pause_and_another_process_takes_over_checkpoints(tmp_path, monkeypatch):
    monkeypatch.setattr(database_module, "CHECKPOINT_SECONDS", INTERVAL)  # a quicker test, same code
    path = tmp_path / "portgate.db"
    first, second = Database(path), Database(path)  # two processes' worth: one checkpoints for both
    try:
        first.write_sync(lambda db: db.execute("CREATE TABLE blobs (b BLOB)"))
        _burst(first)
        one_burst = _log_size(path)
        assert one_burst > 800_000
        for database in (first, second, first):
            time.sleep(INTERVAL * 5)  # writes pause: the checkpoint reaches the end of the log
            _burst(database)
            assert _log_size(path) < one_burst * 1.3  # written from the start again, not appended
        first.close()  # the checkpointing process goes away; the other takes over
        for _ in range(2):
            time.sleep(INTERVAL * 5)
            _burst(second)
            assert _log_size(path) < one_burst * 1.3
        count = second.write_sync(lambda db: db.execute("SELECT COUNT(*) FROM blobs").fetchone()[0])
        assert count == 40 * 6
    finally:
        first.close()
        second.close()


def _nice_of(name: str) -> int:
    """The nice value of the thread called ``name`` (or ``name_0``, a pool's first thread)."""
    thread = next(t for t in threading.enumerate() if t.name in (name, f"{name}_0"))
    return os.getpriority(os.PRIO_PROCESS, thread.native_id)


@pytest.mark.skipif(sys.platform != "linux", reason="a nice value per thread is Linux's")
def test_routine_copies_run_at_the_lowest_priority_and_nothing_that_holds_the_write_turn_does(tmp_path):
    """On a busy box the copy takes the CPU the request handlers leave, and never slows a write turn."""
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    database = Database(tmp_path / "portgate.db")
    try:
        database.write_sync(lambda db: db.execute("CREATE TABLE t (x)"))
        deadline = time.monotonic() + 5
        while _nice_of("db-checkpoint") != 19 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _nice_of("db-checkpoint") == 19
        assert _nice_of("db-checkpoint-finish") == base  # finishes a long log during a write turn
        assert _nice_of("db-write") == base
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base  # the caller's own is untouched
    finally:
        database.close()


def test_under_writes_that_never_pause_the_log_still_starts_over(tmp_path, monkeypatch):
    """A long log is finished during a write turn (by the normal-priority thread), so it cannot grow without end."""
    monkeypatch.setattr(database_module, "CHECKPOINT_SECONDS", INTERVAL / 2)
    monkeypatch.setattr(database_module, "CHECKPOINT_RESTART_BYTES", 2_000_000)
    path = tmp_path / "portgate.db"
    database = Database(path)
    try:
        database.write_sync(lambda db: db.execute("CREATE TABLE blobs (b BLOB)"))
        largest = 0
        for _ in range(4000):  # 80 MB, back to back
            database.write_sync(lambda db: db.execute("INSERT INTO blobs VALUES (?)", (os.urandom(20_000),)))
            largest = max(largest, _log_size(path))
        assert largest < 20_000_000
    finally:
        database.close()
