"""``portgate-server``: run the central server (optionally with demo data), ``portgate-server init`` to
set up a new installation, ``backup`` and ``restore``.

One process serves one port. More than one core, or more than one machine, means more processes:
several instances of ``portgate-server@.service`` on PostgreSQL behind HAProxy (docs/operations.md);
systemd starts, watches and restarts them.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import signal
import sqlite3
import sys

from aiohttp import web

from gate_core.logs import setup_logging
from gate_core.systemd import notify, notify_ready
from server.app import create_app
from server.backup_command import add_backup_commands
from server.config import Config, ConfigError, load_config, redact_url
from server.db import DatabaseBusy, is_postgresql
from server.init_command import add_init_command

log = logging.getLogger("portgate.server")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="portgate-server",
        description="Run the Portgate central server; `portgate-server init` sets up a new installation first.",
    )
    parser.add_argument("--config", help="TOML settings file (default: $PORTGATE_CONFIG)")
    parser.add_argument("--data-dir", help="folder for the SQLite file, mail and keys (created if missing)")
    parser.add_argument(
        "--database-url", help="sqlite:///path/portgate.db or postgresql://… (default: portgate.db in the data dir)"
    )
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8080)")
    parser.add_argument("--demo", action="store_true", help="load demo companies, users and itineraries")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_init_command(commands)
    add_backup_commands(commands)
    return parser


async def _serve(config: Config) -> None:
    """Serve until SIGTERM/SIGINT, telling systemd when it is ready and when it stops."""
    app = create_app(config)
    if config.demo:
        from server.demo import install_demo

        app.on_startup.append(install_demo)
    # Our own handlers, not aiohttp's: a second signal must not cut short the shutdown the first began.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(app, shutdown_timeout=10)
    try:
        # In the try: a start-up that fails half way (a database down, a port taken) closes what it opened.
        await runner.setup()
        await web.TCPSite(runner, config.host, config.port).start()
        # The address it listens on; base_url (the links it writes) may be a balancer's.
        log.info("listening on http://%s:%s (links: %s)", config.host, config.port, config.public_url)
        notify_ready()  # readiness, then watchdog pings while the event loop runs
        await stop.wait()
        notify("STOPPING=1")
    finally:
        await runner.cleanup()


def run_event_loop(main_coro) -> None:  # noqa: ANN001
    """Run on uvloop when it is installed (about a third less CPU per request), else asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main_coro)
    else:
        uvloop.run(main_coro)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command is not None:
        return int(args.handler(args))
    try:
        config = load_config(
            args.config,
            data_dir=args.data_dir,
            database_url=args.database_url,
            host=args.host,
            port=args.port,
            demo=True if args.demo else None,
        )
    except ConfigError as exc:
        print(f"portgate-server: configuration error: {exc}", file=sys.stderr)
        return 2
    setup_logging(config.log_level)
    try:
        run_event_loop(_serve(config))
    except (KeyboardInterrupt, web.GracefulExit):
        pass
    except OSError as exc:
        print(f"portgate-server: cannot start: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        problem = database_problem(exc, config)
        if problem is None:
            raise
        print(f"portgate-server: cannot start: {problem}", file=sys.stderr)
        return 1
    return 0


def database_problem(exc: BaseException, config: Config) -> str | None:
    """What an operator needs to read when the database stops the server at start, or None when ``exc`` is not
    the database's: which database (its password hidden), the engine's own words, and where to look."""
    cause: BaseException | None = exc
    while cause is not None and not _from_database(cause):
        cause = cause.__cause__ or cause.__context__
    if cause is None:
        return None
    why = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    where = redact_url(config.db_url)
    if is_postgresql(config.db_url):
        hint = "is PostgreSQL running, and are the host, port, user, password and database in database_url right?"
    else:
        hint = f"can the user running the server ({getpass.getuser()}) write that file and its folder?"
    return f"the database {where} cannot be used: {why}; {hint}"


def _from_database(exc: BaseException) -> bool:
    library = type(exc).__module__.split(".")[0]
    return isinstance(exc, sqlite3.Error | DatabaseBusy) or library in ("psycopg", "psycopg_pool")


if __name__ == "__main__":
    sys.exit(main())
