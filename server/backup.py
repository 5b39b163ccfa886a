"""Backups of a running installation and their restore into an empty one, on either engine.

A backup is one tar file holding a consistent copy of the database, the helpdesk's attachment
files, copied after the database's snapshot so that every file a copied row names is there (a
file is written before the row that names it), and the secret key that signs links in e-mails.
The copy is SQLite's online backup API in one step (one read snapshot, taken while the server
keeps serving and writing: ``portgate.db`` in the tar), or on PostgreSQL ``pg_dump``'s custom
format inside one snapshot (``portgate.dump``; see server.backup_postgres). The database holds
the keys that sign ticket codes: keep backups as private as the server.

A restore goes into an empty database of the configured engine. A SQLite backup restores into
PostgreSQL too (through server.copy_db); a PostgreSQL dump restores only into PostgreSQL. Every
restore gives the database a new sync epoch, so kiosks start their sync over (server.gate.sync).
"""

from __future__ import annotations

import os
import sqlite3
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from server import backup_postgres, copy_db
from server.db import direct_connection, is_postgresql, sqlite_path
from server.gate.sync import renew_epoch
from server.migrations import apply_migrations

DATABASE = "portgate.db"
#: A PostgreSQL backup's database: ``pg_dump --format=custom``.
DUMP = "portgate.dump"
ATTACHMENTS = "attachments"
SECRET = "secret.key"
PREFIX = "portgate-"
SUFFIX = ".tar"


class BackupError(Exception):
    """The backup or restore cannot be done; the message says why (nothing was changed)."""


@dataclass(frozen=True)
class BackupSummary:
    path: Path
    size: int
    tickets: int
    users: int
    attachments: int
    #: A restore kept the data folder's own secret.key, which differs from the backup's.
    secret_kept: bool = False


def backup(data_dir: Path, target: Path, database_url: str = "") -> BackupSummary:
    """Write a backup of the installation (``data_dir``, and its database: ``database_url``, by
    default the SQLite file in ``data_dir``) to ``target``, which must not exist."""
    if target.exists():
        raise BackupError(f"{target} already exists; choose a new name")
    url = database_url or str(data_dir / DATABASE)
    if not is_postgresql(url) and not sqlite_path(url).exists():
        raise BackupError(f"no database at {sqlite_path(url)}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".portgate-backup-") as work:
        if is_postgresql(url):
            copy = Path(work) / DUMP
            try:
                tickets, users = backup_postgres.dump(url, copy)
            except backup_postgres.ToolError as exc:
                raise BackupError(str(exc)) from exc
        else:
            copy = Path(work) / DATABASE
            _snapshot(sqlite_path(url), copy)
            tickets, users = _check(copy)
        partial = Path(work) / "backup.tar"
        attachments = _write_tar(partial, copy, data_dir)
        _durable_rename(partial, target)
    return BackupSummary(target, target.stat().st_size, tickets, users, attachments)


def _snapshot(source: Path, copy: Path) -> None:
    """A consistent copy of the live database: the backup API in one step (one read snapshot;
    writers go on in WAL mode), then checked by SQLite itself."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(copy)
    try:
        src.backup(dst, pages=-1)
    finally:
        src.close()
        dst.close()


def _check(copy: Path) -> tuple[int, int]:
    conn = sqlite3.connect(copy)
    try:
        verdict = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if verdict != "ok":
            raise BackupError(f"the copied database failed SQLite's integrity check: {verdict}")
        tickets = conn.execute("SELECT COUNT(*) FROM tickets").fetchone()[0]
        users = conn.execute("SELECT COUNT(*) FROM users").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"the database is not a Portgate database: {exc}") from exc
    finally:
        conn.close()
    return tickets, users


def _write_tar(partial: Path, database: Path, data_dir: Path) -> int:
    count = 0
    attachments = data_dir / ATTACHMENTS
    # The backup holds the signing keys and the secret key: only the owner may read it, whatever the umask.
    partial.touch(mode=0o600)
    partial.chmod(0o600)
    with tarfile.open(partial, "w") as tar:
        tar.add(database, arcname=database.name)
        if (data_dir / SECRET).is_file():
            tar.add(data_dir / SECRET, arcname=SECRET)
        if attachments.is_dir():
            for path in sorted(attachments.iterdir()):
                if path.is_file():
                    tar.add(path, arcname=f"{ATTACHMENTS}/{path.name}")
                    count += 1
    return count


def _durable_rename(partial: Path, target: Path) -> None:
    """Put the finished file in place only once it is on disk: a crash leaves no half backup."""
    with partial.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(partial, target)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def backup_name(now: datetime) -> str:
    return f"{PREFIX}{now.strftime('%Y%m%d-%H%M%S')}{SUFFIX}"


def prune(folder: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` backups this command wrote in ``folder``; returns them."""
    ours = sorted(p for p in folder.glob(f"{PREFIX}*{SUFFIX}") if p.is_file())
    gone = ours[: max(0, len(ours) - keep)]
    for path in gone:
        path.unlink()
    return gone


def restore(source: Path, data_dir: Path, database_url: str = "") -> BackupSummary:
    """Restore a backup into ``data_dir`` and its database (``database_url``, by default the SQLite
    file in ``data_dir``), which must be empty: no SQLite file yet, or a PostgreSQL database with
    no data (the empty schema a first start creates is replaced)."""
    url = database_url or str(data_dir / DATABASE)
    _refuse_unless_empty(url)
    if not source.is_file():
        raise BackupError(f"no backup at {source}")
    data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=data_dir, prefix=".portgate-restore-") as work:
        members = _extract(source, Path(work))
        tickets, users = _restore_database(Path(work), members, url)
        attachments = [m for m in members if m.startswith(f"{ATTACHMENTS}/")]
        if attachments:
            (data_dir / ATTACHMENTS).mkdir(exist_ok=True)
            for name in attachments:
                os.replace(Path(work) / name, data_dir / name)
        secret_kept = SECRET in members and (data_dir / SECRET).exists()
        if secret_kept:
            secret_kept = (data_dir / SECRET).read_bytes() != (Path(work) / SECRET).read_bytes()
        elif SECRET in members:
            os.replace(Path(work) / SECRET, data_dir / SECRET)
    return BackupSummary(source, source.stat().st_size, tickets, users, len(attachments), secret_kept)


def _refuse_unless_empty(url: str) -> None:
    if not is_postgresql(url):
        target = sqlite_path(url)
        if target.exists() and target.stat().st_size > 0:
            raise BackupError(f"{target} already exists; restore only into an empty data folder")
        return
    try:
        with direct_connection(url) as db:
            copy_db.refuse_unless_empty(db, "the database")
    except copy_db.CopyError as exc:
        raise BackupError(str(exc)) from exc


def _restore_database(work: Path, members: list[str], url: str) -> tuple[int, int]:
    """The backup's database into ``url``: a dump with pg_restore, a SQLite file as the file itself
    (or, into PostgreSQL, through copy-db); returns (tickets, users)."""
    if DUMP in members:
        if not is_postgresql(url):
            raise BackupError(
                "this backup holds a PostgreSQL dump: restore it into PostgreSQL (database_url), "
                "then copy-db moves it to SQLite if you want"
            )
        try:
            with direct_connection(url) as db:
                has_schema = bool(copy_db.tables(db))
            counts = backup_postgres.restore(work / DUMP, url, replace_empty_schema=has_schema)
        except backup_postgres.ToolError as exc:
            raise BackupError(str(exc)) from exc
        _renew_after_pg_restore(url)
        return counts
    counts = _check(work / DATABASE)
    if is_postgresql(url):
        with direct_connection(work / DATABASE) as db:
            apply_migrations(db)  # an older backup's schema brought up to this version's first (a copy of it)
        _new_sync_epoch(work / DATABASE)  # in the copy, so it goes in with the rows
        try:
            copy_db.copy_database(f"sqlite://{(work / DATABASE).absolute()}", url)
        except copy_db.CopyError as exc:
            raise BackupError(str(exc)) from exc
        return counts
    _new_sync_epoch(work / DATABASE)  # before the file is in place: never a restored file without it
    sqlite_path(url).parent.mkdir(parents=True, exist_ok=True)
    _durable_rename(work / DATABASE, sqlite_path(url))
    return counts


def _new_sync_epoch(url: str | Path) -> None:
    """A new sync epoch for the restored database: the kiosks that synced after the backup hold
    cursors past its counter, so they must drop their cached tickets and sync from 0 (server.gate.sync).
    A backup older than the epoch has no epoch table: the server's first start makes one, new too."""
    with direct_connection(url) as db:
        if "sync_epoch" in copy_db.tables(db):
            renew_epoch(db)


def _renew_after_pg_restore(url: str) -> None:
    """The new epoch after pg_restore, which has committed by then: a failure cannot undo the restore, and the
    restore cannot be run again (the database is no longer empty), so the message says how to finish."""
    import psycopg

    try:
        _new_sync_epoch(url)
    except psycopg.Error as exc:
        raise BackupError(
            f"the backup is restored, but the kiosks could not be told to sync again ({exc}); before starting "
            "the server, run in psql on that database: UPDATE sync_epoch SET epoch = md5(random()::text);"
        ) from exc


def _extract(source: Path, work: Path) -> list[str]:
    """The backup's files into ``work``: only a database and plain attachment files, nothing else."""
    try:
        with tarfile.open(source, "r") as tar:
            members = tar.getmembers()
            names = [m.name for m in members]
            allowed = all(
                m.isfile() and (m.name in (DATABASE, DUMP, SECRET) or _is_attachment(m.name)) for m in members
            )
            if (DATABASE in names) == (DUMP in names) or not allowed:
                raise BackupError(f"{source} is not a Portgate backup")
            # The members are checked above; the "data" filter too where this Python has it (3.11.4 and
            # later; Debian 12 ships 3.11.2).
            if hasattr(tarfile, "data_filter"):
                tar.extractall(work, filter="data")
            else:
                tar.extractall(work)  # noqa: S202 - every member was checked just above
    except (tarfile.TarError, OSError) as exc:
        raise BackupError(f"{source} cannot be read as a Portgate backup: {exc}") from exc
    return names


def _is_attachment(name: str) -> bool:
    folder, _, file = name.partition("/")
    return folder == ATTACHMENTS and bool(file) and "/" not in file and file not in (".", "..")
