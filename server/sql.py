"""The one place where SQLite and PostgreSQL differ, and what services see of a connection.

Services and migrations are written once, in the SQL both engines accept: ``?`` placeholders
(``:name`` with a dict), ``INSERT … RETURNING id``, ``ON CONFLICT``, ``lower(col)`` for case-blind
comparisons, integers 0/1 for booleans, ISO-8601 text for times. What cannot be written once is a
named fragment of :class:`Dialect` (``db.dialect.greatest`` …), so a statement differs in one
place, here. The PostgreSQL adapter rewrites placeholders for psycopg (:func:`to_pyformat`);
migrations' DDL goes through :func:`ddl` (``INTEGER PRIMARY KEY`` becomes a BIGINT identity…).
"""

from __future__ import annotations

import functools
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Dialect:
    name: str
    #: Starts a write transaction: SQLite takes its write lock at once (no upgrade deadlock).
    begin: str
    #: Starts a read-only transaction whose reads all see one snapshot (PostgreSQL's READ COMMITTED
    #: takes a new one per statement).
    begin_snapshot: str
    #: Scalar max/min of several values (SQLite's two-argument ``max``).
    greatest: str
    least: str
    #: Appended to a SELECT whose row decides a write: on PostgreSQL it locks the row until COMMIT,
    #: so another node's transaction waits instead of deciding on the same old value. SQLite's
    #: transactions run one at a time anyway.
    for_update: str
    #: Run inside a write transaction, holds a lock on a text key until COMMIT (its one parameter): for a
    #: decision that counts rows no row lock covers, such as the sign-in failures of one address.
    #: SQLite's write transactions run one at a time anyway.
    key_lock: str = ""

    def string_agg(self, expression: str) -> str:
        """The comma-joined values of ``expression`` in a group (SQLite 3.40 has no ``string_agg``)."""
        return f"group_concat({expression}, ',')" if self is SQLITE else f"string_agg({expression}, ',')"

    def no_index(self, column: str) -> str:
        """``column`` in a condition SQLite must not answer through an index (a unary ``+``); PostgreSQL plans alone."""
        return f"+{column}" if self is SQLITE else column

    def nocase_key(self, column: str) -> str:
        """``column`` on the left of a keyset comparison with ``nocase('?')``: SQLite takes the collation
        from the right-hand side (and then reads its NOCASE index from there); PostgreSQL compares lower()s."""
        return column if self is SQLITE else f"lower({column})"

    def nocase(self, expression: str) -> str:
        """``expression`` compared and ordered without regard to case, as the search indexes are built."""
        return f"{expression} COLLATE NOCASE" if self is SQLITE else f"lower({expression})"


SQLITE = Dialect("sqlite", "BEGIN IMMEDIATE", "BEGIN", "max", "min", "")
POSTGRESQL = Dialect(
    "postgresql",
    "BEGIN",
    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
    "greatest",
    "least",
    " FOR UPDATE",
    "SELECT pg_advisory_xact_lock(hashtextextended(?, 0))",
)

#: The engine-neutral integrity error (a unique or check constraint refused a write): SQLite's own
#: class, which the PostgreSQL adapter's errors subclass, so one ``except`` serves both engines.
IntegrityError = sqlite3.IntegrityError


class Row(tuple):
    """A result row: a tuple (``a, b = row``, ``row[0]``, ``row == (1, 'x')``) and by name (``row["a"]``)."""

    __slots__ = ()
    _names: dict[str, int] = {}

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


@functools.lru_cache(maxsize=2048)
def row_class(names: tuple[str, ...]) -> type[Row]:
    return type("Row", (Row,), {"__slots__": (), "_names": {name: i for i, name in enumerate(names)}})


def row_maker(names: tuple[str, ...]) -> Callable[[Sequence[Any]], Row]:
    """``values → Row`` for a result with these column names."""
    return functools.partial(tuple.__new__, row_class(names))


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What a service function receives: one connection, inside the write transaction when writing."""

    dialect: Dialect

    def execute(self, sql: str, params: Any = ()) -> Any: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Any: ...

    def query(self, sql: str, params: Any = ()) -> Iterator[dict[str, Any]]: ...

    @property
    def in_transaction(self) -> bool: ...


_TOKENS = re.compile(r"'(?:[^']|'')*'|\"[^\"]*\"|--[^\n]*|::|\?|:[A-Za-z_]\w*|%|\bLIKE\b")


@functools.lru_cache(maxsize=4096)
def to_pyformat(sql: str) -> str:
    """A statement for psycopg: ``?`` → ``%s``, ``:name`` → ``%(name)s``, ``%`` doubled, ``LIKE`` → ``ILIKE``.

    Quoted text keeps its ``?`` and ``LIKE``.
    """

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "?":
            return "%s"
        if token == "%":
            return "%%"
        if token == "LIKE":
            return "ILIKE"  # SQLite's LIKE ignores case (ASCII): the same answers on both engines
        if token.startswith(":") and token != "::":
            return f"%({token[1:]})s"
        return token.replace("%", "%%")  # psycopg reads placeholders inside quotes too

    return _TOKENS.sub(replace, sql)


_PG_DDL = [
    (re.compile(r"\bINTEGER PRIMARY KEY\b"), "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b"), "BYTEA"),
    (re.compile(r"\)\s*WITHOUT ROWID"), ")"),
    (re.compile(r"(\w+) COLLATE NOCASE"), r"lower(\1)"),
]


def ddl(sql: str, dialect: Dialect) -> str:
    """A migration's statement for ``dialect``: written for SQLite, with PostgreSQL's types swapped in.

    Ids are BIGINT identities (explicit ids, as the counters' ``id = 1``, still go in); every
    INTEGER is a BIGINT (counters, sync numbers); REAL (epoch seconds) needs double precision;
    a NOCASE index is an index on ``lower(col)``.
    """
    if dialect is SQLITE:
        return sql
    for pattern, replacement in _PG_DDL:
        sql = pattern.sub(replacement, sql)
    return sql
