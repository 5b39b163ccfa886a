"""PostgreSQL's part of a backup and a restore: ``pg_dump`` and ``pg_restore``.

The dump is ``pg_dump``'s custom format (``-Fc``: compressed, restored table by table). It is
taken inside a snapshot this module opens and exports (``pg_dump --snapshot``), so the counts
the command reports are the dump's own. The restore runs ``pg_restore --no-owner --no-privileges
--exit-on-error --single-transaction``: the objects belong to whoever restores (a backup from
another node or role name restores anywhere), and a failure leaves the target as it was.

The password never goes on a command line (other users see those): a password in the URL goes
to the tool in ``PGPASSWORD``; without one, libpq's own ``~/.pgpass`` or service file apply.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from server.db import direct_connection, scalar
from server.sql import POSTGRESQL, Connection

#: Where Debian installs each major version's programs, when they are not on the PATH.
DEBIAN_BINARIES = "/usr/lib/postgresql/*/bin"


class ToolError(Exception):
    """A PostgreSQL program is missing or failed; the message says which and why."""


@dataclass(frozen=True)
class Invocation:
    """A tool's arguments and environment for one database: the password only in the environment."""

    argv: list[str]
    env: dict[str, str]


def find_tool(name: str, search_path: str | None = None, debian: str = DEBIAN_BINARIES) -> str:
    """``name`` on the PATH, else the newest Debian-installed version's; :class:`ToolError` when neither."""
    found = shutil.which(name, path=search_path)
    if found:
        return found
    versions = sorted(glob.glob(f"{debian}/{name}"), key=lambda p: _major(Path(p).parent.parent.name))
    if versions:
        return versions[-1]
    raise ToolError(
        f"{name} was not found on the PATH nor in {debian}: install PostgreSQL's client programs "
        "(Debian: apt-get install postgresql-client), the same major version as the server or newer"
    )


def _major(name: str) -> int:
    return int(name) if name.isdigit() else -1


def invocation(tool: str, url: str, *arguments: str) -> Invocation:
    """``tool`` on the database ``url`` names: the connection as a conninfo without its password."""
    params = conninfo_to_dict(url)
    password = params.pop("password", None)
    env = dict(os.environ)
    if password:
        env["PGPASSWORD"] = str(password)
    return Invocation([tool, *arguments, f"--dbname={make_conninfo('', **params)}"], env)


def _run(call: Invocation, what: str) -> None:
    done = subprocess.run(call.argv, env=call.env, capture_output=True, text=True)
    if done.returncode != 0:
        detail = " ".join(done.stderr.strip().splitlines()[-3:]) or f"exit status {done.returncode}"
        raise ToolError(f"{what} failed: {detail}")


def dump(url: str, target: Path) -> tuple[int, int]:
    """``pg_dump -Fc`` of ``url`` into ``target``, inside one exported snapshot; returns (tickets, users) in it."""
    pg_dump = find_tool("pg_dump")
    with direct_connection(url) as db:
        db.execute(POSTGRESQL.begin_snapshot)
        try:
            snapshot = scalar(db, "SELECT pg_export_snapshot()")
            counts = _counts(db)
            _run(invocation(pg_dump, url, "--format=custom", f"--snapshot={snapshot}", f"--file={target}"), "pg_dump")
        finally:
            db.execute("ROLLBACK")  # the snapshot lives as long as this transaction: until pg_dump is done
    _run(invocation(find_tool("pg_restore"), url, "--list", str(target)), "reading the dump back")
    return counts


def restore(source: Path, url: str, replace_empty_schema: bool) -> tuple[int, int]:
    """``pg_restore`` the dump ``source`` into ``url``; with ``replace_empty_schema``, the tables a first
    start created there (holding no data: checked by the caller) are dropped and restored."""
    clean = ["--clean", "--if-exists"] if replace_empty_schema else []
    arguments = ["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction", *clean]
    pg_restore = find_tool("pg_restore")
    # --dbname goes before the file: pg_restore reads options after the file too, but this reads as it runs.
    call = invocation(pg_restore, url, *arguments)
    _run(Invocation([*call.argv, str(source)], call.env), "pg_restore")
    with direct_connection(url) as db:
        return _counts(db)


def _counts(db: Connection) -> tuple[int, int]:
    try:
        return scalar(db, "SELECT count(*) FROM tickets"), scalar(db, "SELECT count(*) FROM users")
    except psycopg.errors.UndefinedTable as exc:
        raise ToolError(f"the database is not a Portgate database: {exc}") from exc
