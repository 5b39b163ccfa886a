"""Direct database access for tests, on whichever engine the test's config names.

Tests look at (and sometimes arrange) rows the app wrote, outside the app: through the same
connection classes the server uses, so the same SQL (``?`` placeholders) runs on both engines.
Each statement commits on its own (autocommit), as the tests' ``sqlite3.connect`` blocks did.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator, Sequence
from typing import Any

from server.db import direct_connection, is_postgresql
from server.sql import Connection


def url_of(config_or_url: Any) -> str:
    """A test's database URL: a :class:`server.config.Config`'s ``db_url``, or a URL or path as given."""
    return config_or_url if isinstance(config_or_url, str) else str(getattr(config_or_url, "db_url", config_or_url))


def open_db(config_or_url: Any) -> contextlib.AbstractContextManager[Connection]:
    """A connection in autocommit; closed at the end of the block."""
    return direct_connection(url_of(config_or_url))


def db_rows(config_or_url: Any, sql: str, params: Any = ()) -> list[tuple]:
    """Every row of a query, as plain tuples (PostgreSQL's booleans stay True/False, equal to 1/0)."""
    with open_db(config_or_url) as db:
        cursor = db.execute(sql, params)
        if cursor.description is None:  # an UPDATE or DELETE (tests run those through here too)
            return []
        return [tuple(row) for row in cursor.fetchall()]


def db_value(config_or_url: Any, sql: str, params: Any = ()) -> Any:
    """The first column of the first row, or None."""
    rows = db_rows(config_or_url, sql, params)
    return rows[0][0] if rows else None


def db_execute(config_or_url: Any, sql: str, params: Any = ()) -> int:
    """Run one statement (committed at once); returns the rows it changed."""
    with open_db(config_or_url) as db:
        return db.execute(sql, params).rowcount


def is_pg(config_or_url: Any) -> bool:
    return is_postgresql(url_of(config_or_url))


@contextlib.contextmanager
def row_held(config_or_url: Any, table: str, row_id: int) -> Iterator[None]:
    """Another transaction (another node's) holding one row of ``table`` for update until the block ends
    (on SQLite: the database's write lock)."""
    with direct_connection(url_of(config_or_url)) as db:
        db.execute(db.dialect.begin)
        db.execute(f"SELECT id FROM {table} WHERE id = ?" + db.dialect.for_update, (row_id,))
        try:
            yield
        finally:
            db.execute("COMMIT")


async def until_lock_waiters(config_or_url: Any, count: int, running: Sequence[asyncio.Future], what: str) -> None:
    """Until ``count`` statements wait for a lock in the database (PostgreSQL's ``pg_stat_activity``) while
    none of ``running`` has ended: a race test's requests have all reached the row another holds."""
    waiting_sql = (
        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + 30
    while db_value(config_or_url, waiting_sql) < count:
        assert not any(f.done() for f in running) and time.monotonic() < deadline, what
        await asyncio.sleep(0.05)
