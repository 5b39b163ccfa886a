"""Numbered schema migrations, applied in order at start and recorded in ``_migrations``.

Each migration is a function registered with ``@migration(N)``; never edit one that has shipped,
add the next number instead (in the newest module below, or a new one imported at the end of this
file). SQL is kept to what SQLite and PostgreSQL both accept where possible.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlite_utils

Migration = Callable[[sqlite_utils.Database], None]
MIGRATIONS: dict[int, Migration] = {}


def migration(number: int) -> Callable[[Migration], Migration]:
    def register(fn: Migration) -> Migration:
        if number in MIGRATIONS:
            raise RuntimeError(f"migration {number} registered twice")
        MIGRATIONS[number] = fn
        return fn

    return register


def apply_migrations(db: sqlite_utils.Database) -> list[int]:
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (number INTEGER PRIMARY KEY, name TEXT, applied_at REAL)")
    done = {row[0] for row in db.execute("SELECT number FROM _migrations").fetchall()}
    applied = []
    for number in sorted(MIGRATIONS):
        if number in done:
            continue
        fn = MIGRATIONS[number]
        db.execute("BEGIN IMMEDIATE")
        try:
            fn(db)
            db.execute(
                "INSERT INTO _migrations (number, name, applied_at) VALUES (?, ?, ?)",
                (number, fn.__name__, time.time()),
            )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        applied.append(number)
    return applied


def script(db: sqlite_utils.Database, sql: str) -> None:
    """Run the statements of ``sql`` one by one (inside the migration's transaction)."""
    for statement in sql.split(";"):
        if statement.strip():
            db.execute(statement)


# The migrations register themselves on import, in number order across these modules.
from server.migrations import (  # noqa: E402,F401
    first_schema,
    gate_at_scale,
    helpdesk_paging,
    production,
    registration_sms,
    share_links,
)
