"""Numbered schema migrations, applied in order at start and recorded in ``_migrations``.

Each migration is a function registered with ``@migration(N)``; never edit one that has shipped,
add the next number instead (in the newest module below, or a new one imported at the end of this
file). Migrations are written once, in SQLite's words; :func:`script` hands each statement to
:func:`server.sql.ddl`, which swaps in PostgreSQL's types (the one place the DDL differs). New
numbers: 50–54 for the engine work of issue 15.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from server.sql import Connection, ddl

Migration = Callable[[Connection], None]
MIGRATIONS: dict[int, Migration] = {}


def migration(number: int) -> Callable[[Migration], Migration]:
    def register(fn: Migration) -> Migration:
        if number in MIGRATIONS:
            raise RuntimeError(f"migration {number} registered twice")
        MIGRATIONS[number] = fn
        return fn

    return register


def apply_migrations(db: Connection) -> list[int]:
    """Apply the migrations ``_migrations`` does not list, each in its own transaction."""
    script(db, "CREATE TABLE IF NOT EXISTS _migrations (number INTEGER PRIMARY KEY, name TEXT, applied_at REAL)")
    done = {row[0] for row in db.execute("SELECT number FROM _migrations").fetchall()}
    applied = []
    for number in sorted(MIGRATIONS):
        if number in done:
            continue
        fn = MIGRATIONS[number]
        db.execute(db.dialect.begin)
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


def script(db: Connection, sql: str) -> None:
    """Run the statements of ``sql`` one by one (inside the migration's transaction), in ``db``'s dialect."""
    for statement in sql.split(";"):
        if statement.strip():
            db.execute(ddl(statement, db.dialect))


# The migrations register themselves on import, in number order across these modules.
from server.migrations import (  # noqa: E402,F401
    first_schema,
    gate_at_scale,
    helpdesk_paging,
    live_presence,
    production,
    registration_sms,
    share_links,
    sync_epoch,
)
