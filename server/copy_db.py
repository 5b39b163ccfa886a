"""``portgate-server copy-db --from URL --to URL``: copy an installation's database to another engine.

Made to move a live SQLite install to PostgreSQL (it works the other way too, and between two
databases of one engine): the target must be empty (no tables, or only the schema a fresh start
creates); it gets the schema from the migrations, then every table's rows in dependency order
(referenced tables first), in batches, in ONE transaction (a failure leaves no half copy), then
each identity sequence is set past the largest id copied, so new rows get fresh ids.

The source is read inside one read transaction: one consistent snapshot while its server keeps
serving (on SQLite, writers go on in WAL mode; what they commit after the snapshot is not
copied, so stop the server, or switch kiosks over, once the copy is done).

The copy keeps the sync counter, every row's sync numbers and the sync epoch (server.gate.sync):
it is the source's state exactly, so a kiosk's cursor and cache stay right against it, and a new
epoch would only make every kiosk download every ticket again. A restore, which puts an OLDER
state back, is what gives a new epoch (server.backup: in the backup's copy, before it comes through here).
"""

from __future__ import annotations

import graphlib
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.db import direct_connection, is_postgresql, sqlite_path
from server.migrations import MIGRATIONS, apply_migrations
from server.sql import Connection

#: Rows read and written at a time: bounded memory whatever the table's size.
BATCH = 5000
#: The migrations' own bookkeeping: the target keeps the record of its own migrations.
BOOKKEEPING = "_migrations"

#: The catalog queries, the one thing the engines spell differently here.
_TABLES = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'table' AND substr(name, 1, 7) <> 'sqlite_'",
    "postgresql": "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()",
}
_IDENTITIES = "SELECT table_name, column_name FROM information_schema.columns WHERE is_identity = 'YES' AND table_schema = current_schema()"  # noqa: E501


class CopyError(Exception):
    """The copy cannot be done; the message says why (the target was not changed)."""


@dataclass(frozen=True)
class CopySummary:
    #: Rows copied per table, in the order they were copied.
    counts: dict[str, int]
    seconds: float


def tables(db: Connection) -> set[str]:
    return {row[0] for row in db.execute(_TABLES[db.dialect.name]).fetchall()}


def references(db: Connection, table: str) -> set[str]:
    """The tables ``table``'s foreign keys point to."""
    if db.dialect.name == "sqlite":
        return {row[2] for row in db.execute(f'PRAGMA foreign_key_list("{table}")').fetchall()}
    sql = "SELECT confrelid::regclass::text FROM pg_constraint WHERE contype = 'f' AND conrelid = ?::regclass"
    return {row[0].strip('"') for row in db.execute(sql, (table,)).fetchall()}


def seeded_tables() -> set[str]:
    """The tables a fresh migration already fills (a counter's one row…): found by migrating a
    throwaway SQLite file, so a new migration that seeds a table needs no change here."""
    with tempfile.TemporaryDirectory(prefix="portgate-schema-") as work, direct_connection(Path(work) / "x.db") as db:
        apply_migrations(db)
        return {name for name in tables(db) if db.execute(f'SELECT 1 FROM "{name}" LIMIT 1').fetchone()}


#: What a server's first start writes before anyone uses it: its signing keys (a restore or copy replaces them).
FIRST_START_TABLES = {"signing_keys"}


def data_tables(db: Connection) -> list[str]:
    """The tables of ``db`` that hold something a fresh installation would not: empty means none."""
    ignore = seeded_tables() | FIRST_START_TABLES | {BOOKKEEPING}
    names = sorted(tables(db) - ignore)
    return [name for name in names if db.execute(f'SELECT 1 FROM "{name}" LIMIT 1').fetchone()]


def refuse_unless_empty(db: Connection, shown: str) -> None:
    """Raise :class:`CopyError` when ``db`` holds data (a schema without rows, as a first start leaves, is empty)."""
    holding = data_tables(db)
    if holding:
        raise CopyError(
            f"{shown} is not empty (rows in {', '.join(holding[:5])}{'…' if len(holding) > 5 else ''}); "
            "copy or restore only into an empty database"
        )


def copy_order(db: Connection) -> list[str]:
    """Every table but the bookkeeping one, referenced tables before the tables that refer to them."""
    names = tables(db) - {BOOKKEEPING}
    graph = {name: references(db, name) - {name} for name in sorted(names)}
    return list(graphlib.TopologicalSorter(graph).static_order())


def _check_source(db: Connection, shown: str) -> None:
    if BOOKKEEPING not in tables(db):
        raise CopyError(f"{shown} is not a Portgate database (no {BOOKKEEPING} table)")
    applied = {row[0] for row in db.execute(f"SELECT number FROM {BOOKKEEPING}").fetchall()}
    if applied - set(MIGRATIONS):
        raise CopyError(f"{shown} was written by a newer Portgate than this one; copy it with that version")
    if set(MIGRATIONS) - applied:
        raise CopyError(f"{shown} has an older schema: start this version's server on it once (it upgrades it)")


def copy_database(
    source_url: str, target_url: str, *, batch: int = BATCH, progress: Callable[[str, int], None] | None = None
) -> CopySummary:
    """Copy every row of ``source_url`` into the empty ``target_url`` (see the module's docstring)."""
    started = time.perf_counter()
    if source_url == target_url:
        raise CopyError("the source and the target are the same database")
    if not is_postgresql(source_url) and not sqlite_path(source_url).is_file():
        raise CopyError(f"no database at {sqlite_path(source_url)}")
    if not is_postgresql(target_url):
        sqlite_path(target_url).parent.mkdir(parents=True, exist_ok=True)
    with direct_connection(source_url) as source, direct_connection(target_url) as target:
        _check_source(source, "the source")
        refuse_unless_empty(target, "the target")
        apply_migrations(target)  # the schema, where it is not there yet
        counts = _copy_all(source, target, batch, progress or (lambda _table, _rows: None))
    return CopySummary(counts, time.perf_counter() - started)


def _copy_all(
    source: Connection, target: Connection, batch: int, progress: Callable[[str, int], None]
) -> dict[str, int]:
    """The rows, in one read snapshot of the source and one write transaction on the target."""
    order = copy_order(target)
    source.execute(source.dialect.begin_snapshot)
    target.execute(target.dialect.begin)
    try:
        for name in reversed(order):  # the migrations' seed rows go; the source's take their place
            target.execute(f'DELETE FROM "{name}"')
        counts = {}
        for name in order:
            counts[name] = _copy_table(source, target, name, batch)
            progress(name, counts[name])
        if target.dialect.name == "postgresql":
            _reset_identities(target)
    except BaseException:
        target.execute("ROLLBACK")
        source.execute("ROLLBACK")
        raise
    target.execute("COMMIT")
    source.execute("ROLLBACK")  # read only
    return counts


def _copy_table(source: Connection, target: Connection, name: str, batch: int) -> int:
    copied = 0
    for columns, rows in _batches(source, name, batch):
        _write(target, name, columns, rows)
        copied += len(rows)
    return copied


def _batches(source: Any, name: str, batch: int) -> Iterator[tuple[list[str], list[tuple]]]:
    """``(column names, rows)`` of ``name``, ``batch`` rows at a time (a server-side cursor on
    PostgreSQL: a million-row table is never in memory at once)."""
    sql = f'SELECT * FROM "{name}"'
    if source.dialect.name == "postgresql":
        cursor = source.conn.cursor(name=f"copy_{name}")
        cursor.itersize = batch
        cursor.execute(sql)
    else:
        cursor = source.conn.execute(sql)
    try:
        columns = [column[0] for column in cursor.description]
        while rows := cursor.fetchmany(batch):
            yield columns, [tuple(row) for row in rows]
    finally:
        cursor.close()


def _write(target: Any, name: str, columns: list[str], rows: list[tuple]) -> None:
    quoted = ", ".join(f'"{column}"' for column in columns)
    if target.dialect.name == "postgresql":  # COPY: several times faster than INSERTs for big tables
        with target.conn.cursor().copy(f'COPY "{name}" ({quoted}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join("?" for _ in columns)
    target.executemany(f'INSERT INTO "{name}" ({quoted}) VALUES ({marks})', rows)


def _reset_identities(target: Connection) -> None:
    """Each identity's next value past the largest id copied (explicit ids leave it behind)."""
    for table, column in target.execute(_IDENTITIES).fetchall():
        target.execute(
            f'SELECT setval(pg_get_serial_sequence(?, ?), coalesce(max("{column}"), 0) + 1, false) FROM "{table}"',
            (f'"{table}"', column),
        )
