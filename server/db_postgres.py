"""The PostgreSQL engine: psycopg 3 (synchronous) on a psycopg_pool connection pool, behind the same façade.

Services stay the synchronous functions the SQLite engine runs: reads run on reader threads, each
borrowing a pooled connection in autocommit (one statement, one snapshot, no transaction left
open); a write function runs on the writer thread inside one transaction (READ COMMITTED) on a
pooled connection, and any exception rolls it back. Writes of one node still go one at a time
(the services were written for that); across nodes, where a read decides a write, the read
locks its row (``Dialect.for_update``), and unique constraints refuse the rest.

A connection that fails (the server restarted, a failover moved the primary) raises
:class:`DatabaseBusy`, answered 503: a kiosk keeps its local verdict and retries. The pool checks
a connection before lending it and replaces broken ones, so the next request reconnects on its
own (a multi-host URL with ``target_session_attrs=read-write`` finds the new primary).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import psycopg
from psycopg import pq
from psycopg.adapt import Dumper, Loader
from psycopg_pool import ConnectionPool, PoolTimeout

from server.db import Database, DatabaseBusy, is_storage_failure
from server.sql import POSTGRESQL, IntegrityError, row_maker, to_pyformat

log = logging.getLogger(__name__)
T = TypeVar("T")

#: ``pg_advisory_lock`` key held while migrating, so nodes starting together migrate once.
MIGRATION_LOCK = 0x706F_7274_6761_7465 & 0x7FFF_FFFF_FFFF_FFFF  # "portgate"
#: How long a request waits for a pooled connection before it is answered 503.
POOL_TIMEOUT_SECONDS = 5.0


class PgIntegrityError(IntegrityError):
    """A constraint refused a write on PostgreSQL (caught as :data:`server.sql.IntegrityError`)."""


class _BoolAsInt(Dumper):
    """Booleans are stored as INTEGER 0/1 on both engines; Python's True/False go in as 1/0."""

    oid = psycopg.adapters.types["int8"].oid

    def dump(self, obj: Any) -> bytes:
        return b"1" if obj else b"0"


class _NumericAsNumber(Loader):
    """SUM() of BIGINT is NUMERIC on PostgreSQL; services expect an int (a float when it has a fraction)."""

    def load(self, data: Any) -> Any:
        text = bytes(data)
        return int(text) if text.lstrip(b"-").isdigit() else float(text)


def _named_rows(cursor: Any) -> Any:
    description = cursor.description
    if description is None:
        return tuple
    return row_maker(tuple(column.name for column in description))


def configure(conn: psycopg.Connection) -> None:
    """Every connection's adapters: named rows, booleans as integers, sums as numbers."""
    conn.row_factory = _named_rows
    conn.adapters.register_dumper(bool, _BoolAsInt)
    conn.adapters.register_loader("numeric", _NumericAsNumber)


class PgConnection:
    """A psycopg connection as services see it (:class:`server.sql.Connection`)."""

    dialect = POSTGRESQL

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Any = ()) -> psycopg.Cursor:
        try:
            return self.conn.execute(to_pyformat(sql), params if params is not None else ())
        except psycopg.errors.IntegrityError as exc:
            raise PgIntegrityError(str(exc)) from exc

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> psycopg.Cursor:
        cursor = self.conn.cursor()
        try:
            cursor.executemany(to_pyformat(sql), list(rows))
        except psycopg.errors.IntegrityError as exc:
            raise PgIntegrityError(str(exc)) from exc
        return cursor

    def query(self, sql: str, params: Any = ()) -> Iterator[dict[str, Any]]:
        cursor = self.execute(sql, params)
        names = [column.name for column in cursor.description or ()]
        for values in cursor:
            yield dict(zip(names, values, strict=True))

    @property
    def in_transaction(self) -> bool:
        return self.conn.info.transaction_status != pq.TransactionStatus.IDLE

    def close(self) -> None:
        self.conn.close()


@contextlib.contextmanager
def connect_direct(url: str) -> Iterator[PgConnection]:
    """A connection of its own (not pooled), in autocommit, configured as the pool's are."""
    with psycopg.connect(url, autocommit=True) as raw:
        configure(raw)
        yield PgConnection(raw)


def _unavailable(exc: psycopg.Error) -> Exception:
    """A lost or unreachable server (and a pool with no connection to lend) is "busy": 503, retry."""
    if is_storage_failure(exc):
        return exc
    return DatabaseBusy(f"database unavailable: {type(exc).__name__}")


class PostgresDatabase(Database):
    """Thread-backed async façade over a PostgreSQL connection pool."""

    def __init__(self, url: str, readers: int = 4, pool_size: int = 8, **_ignored: Any) -> None:
        super().__init__()
        self._url = url
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="db-read")
        size = max(pool_size, readers + 1)
        # Several writer threads: one would queue a kiosk's redeem behind any portal write on this node (a
        # 10,000-row import held redeems 5 s in bench.mixed; 1.2 s with these). Writes of one node are then
        # as concurrent as those of several nodes, which PostgreSQL's row locks already order.
        self._writer = ThreadPoolExecutor(size - readers, thread_name_prefix="db-write")
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=size,
            kwargs={"autocommit": True},
            configure=configure,
            check=ConnectionPool.check_connection,
            timeout=POOL_TIMEOUT_SECONDS,
            name="portgate",
            open=True,
        )

    @property
    def url(self) -> str:
        return self._url

    def migrate(self) -> list[int]:
        """Apply pending migrations, under an advisory lock so concurrent starts migrate once."""
        from server.migrations import apply_migrations

        with connect_direct(self._url) as db:
            db.execute("SELECT pg_advisory_lock(?)", (MIGRATION_LOCK,))
            try:
                return apply_migrations(db)
            finally:
                db.execute("SELECT pg_advisory_unlock(?)", (MIGRATION_LOCK,))

    def _run_read(self, fn: Callable[[Any], T]) -> T:
        try:
            with self.pool.connection() as conn:
                return fn(PgConnection(conn))
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise _unavailable(exc) from exc

    def _run_write(self, fn: Callable[[Any], T]) -> T:
        try:
            with self.pool.connection() as conn, conn.transaction():
                return fn(PgConnection(conn))
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise _unavailable(exc) from exc

    def close(self) -> None:
        self._readers.shutdown(wait=True)
        self._writer.shutdown(wait=True)
        self.pool.close()
