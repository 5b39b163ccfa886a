"""``portgate-server backup``, ``restore`` (see server.backup) and ``copy-db`` (see server.copy_db)."""

from __future__ import annotations

import argparse
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from server.backup import BackupError, backup, backup_name, prune, restore
from server.config import Config, ConfigError, load_config, redact_url
from server.copy_db import CopyError, copy_database

#: Exit statuses: bad options or settings, and a backup or restore that could not be done.
BAD_VALUE, REFUSED = 2, 3
#: What a backup, restore or copy can fail with and the operator can act on: the message is shown,
#: not a traceback (a database unreachable, a disk full…; no message of these names a password).
FAILURES = (BackupError, CopyError, OSError, sqlite3.Error, psycopg.Error)


def _data_options(command: argparse.ArgumentParser) -> None:
    same = argparse.SUPPRESS  # given before or after the command, --config and --data-dir mean the same
    command.add_argument("--config", default=same, help="TOML settings file (default: $PORTGATE_CONFIG)")
    command.add_argument("--data-dir", default=same, help="the installation's data folder (the data_dir setting)")
    command.add_argument("--database-url", default=same, help="its database (the database_url setting)")


def add_backup_commands(commands: argparse._SubParsersAction) -> None:
    """Register ``backup`` and ``restore`` on the program's subcommands."""
    make = commands.add_parser(
        "backup",
        help="write a backup of the running installation (database and attachments) to one file",
        description="Write a consistent backup while the server keeps serving: the database (one snapshot: "
        "SQLite's online backup, or pg_dump's custom format on PostgreSQL) and the helpdesk's attachments, in "
        "one tar file. Refuses to overwrite a file.",
    )
    _data_options(make)
    where = make.add_mutually_exclusive_group(required=True)
    where.add_argument("--to", help="the backup file to write (must not exist)")
    where.add_argument("--to-dir", help="a folder: the file is named portgate-YYYYMMDD-HHMMSS.tar")
    make.add_argument("--keep", type=int, help="with --to-dir: keep only this many newest backups there")
    make.set_defaults(handler=run_backup)
    back = commands.add_parser(
        "restore",
        help="restore a backup into an empty data folder and database (with the server stopped)",
        description="Restore a backup written by `portgate-server backup` into a data folder that has no "
        "database yet, or an empty PostgreSQL database; refuses one that holds data. Start the server afterwards.",
    )
    _data_options(back)
    back.add_argument("--from", dest="source", required=True, help="the backup file to restore")
    back.set_defaults(handler=run_restore)
    copy = commands.add_parser(
        "copy-db",
        help="copy a database (a live SQLite install, say) into an empty one (PostgreSQL, say)",
        description="Copy every table of one Portgate database into another, empty one, in one consistent "
        "snapshot of the source (its server may keep serving; what it writes after is not copied). "
        "Either may be sqlite:///path or postgresql://…",
    )
    copy.add_argument("--from", dest="source", required=True, help="the database to copy (a URL)")
    copy.add_argument("--to", dest="target", required=True, help="the empty database to fill (a URL)")
    copy.set_defaults(handler=run_copy_db)


def _config(args: argparse.Namespace) -> Config | None:
    try:
        return load_config(
            getattr(args, "config", None),
            data_dir=getattr(args, "data_dir", None),
            database_url=getattr(args, "database_url", None),
        )
    except ConfigError as exc:
        print(f"portgate-server: configuration error: {exc}", file=sys.stderr)
        return None


def run_backup(args: argparse.Namespace) -> int:
    config = _config(args)
    if config is None:
        return BAD_VALUE
    if args.keep is not None and (args.to_dir is None or args.keep < 1):
        print("portgate-server backup: --keep: a number of 1 or more, with --to-dir", file=sys.stderr)
        return BAD_VALUE
    target = Path(args.to) if args.to else Path(args.to_dir) / backup_name(datetime.now(UTC))
    try:
        made = backup(config.data_path, target, config.database_url)
    except FAILURES as exc:
        print(f"portgate-server backup: {exc}", file=sys.stderr)
        return REFUSED
    print(
        f"portgate-server: backup {made.path} ({made.size} bytes): {made.tickets} tickets, {made.users} users, "
        f"{made.attachments} attachments"
    )
    if args.keep:
        for path in prune(target.parent, args.keep):
            print(f"portgate-server: removed the older backup {path}")
    return 0


def run_restore(args: argparse.Namespace) -> int:
    config = _config(args)
    if config is None:
        return BAD_VALUE
    try:
        made = restore(Path(args.source), config.data_path, config.database_url)
    except FAILURES as exc:
        print(f"portgate-server restore: {exc}", file=sys.stderr)
        return REFUSED
    print(
        f"portgate-server: restored {made.path} into {redact_url(config.db_url)}: {made.tickets} tickets, "
        f"{made.users} users, {made.attachments} attachments; start the server now"
    )
    if made.secret_kept:
        print(
            f"portgate-server: kept the secret.key already in {config.data_path}, which differs from the backup's: "
            "links mailed before the backup (password set-up, e-mail confirmation) will not open; to keep them, "
            "stop the server and put the backup's secret.key in its place (tar -xf BACKUP secret.key)",
            file=sys.stderr,
        )
    return 0


def run_copy_db(args: argparse.Namespace) -> int:
    for url in (args.source, args.target):
        if not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
            print(f"portgate-server copy-db: {redact_url(url)!r}: sqlite:///path or postgresql://…", file=sys.stderr)
            return BAD_VALUE

    def progress(table: str, rows: int) -> None:
        print(f"portgate-server: {table}: {rows} rows", flush=True)

    try:
        made = copy_database(args.source, args.target, progress=progress)
    except FAILURES as exc:
        print(f"portgate-server copy-db: {exc}", file=sys.stderr)
        return REFUSED
    print(
        f"portgate-server: copied {sum(made.counts.values())} rows in {len(made.counts)} tables from "
        f"{redact_url(args.source)} to {redact_url(args.target)} in {made.seconds:.1f} s"
    )
    return 0
