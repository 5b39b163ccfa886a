"""``portgate-server``: run the central server (optionally with demo data, optionally as N workers),
``portgate-server init`` to set up a new installation, ``backup`` and ``restore``."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import signal
import sys

from aiohttp import web

from gate_core.logs import setup_logging
from server.app import create_app
from server.backup_command import add_backup_commands
from server.config import Config, ConfigError, load_config
from server.init_command import add_init_command

log = logging.getLogger("portgate.server")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="portgate-server",
        description="Run the Portgate central server; `portgate-server init` sets up a new installation first.",
    )
    parser.add_argument("--config", help="TOML settings file (default: $PORTGATE_CONFIG)")
    parser.add_argument("--data-dir", help="folder for the SQLite file, mail and keys (created if missing)")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8080)")
    parser.add_argument(
        "--workers",
        type=int,
        help="server processes sharing the port, e.g. one per core (default 1; setting `workers`)",
    )
    parser.add_argument("--demo", action="store_true", help="load demo companies, users and itineraries")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_init_command(commands)
    add_backup_commands(commands)
    return parser


async def _serve(config: Config, worker=None) -> None:  # noqa: ANN001 - a server.workers.WorkerLink
    """Serve until SIGTERM/SIGINT: the whole server, or one worker of several (``worker``)."""
    app = create_app(config)
    if config.demo and worker is None:  # with workers, the parent installed it once
        from server.demo import install_demo

        app.on_startup.append(install_demo)
    # Our own handlers, not aiohttp's: a second SIGTERM (systemd signals every process of the
    # unit and the parent forwards its own) must not cut short the shutdown the first one began.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(app, shutdown_timeout=10)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port) if worker is None else worker.site(runner)
        await site.start()
        if worker is None:
            log.info("listening on %s", config.public_url)
            from gate_core.systemd import notify_ready

            notify_ready()
        else:
            worker.listening()  # the parent tells systemd once every worker is listening
        await stop.wait()
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


def _run(config: Config, worker=None) -> int:  # noqa: ANN001
    if worker is not None and worker.index > 0:
        # Listeners that must exist once per server (the helpdesk's inbound SMTP port) run in
        # worker 0 only; a second bind of the same port would fail.
        config = dataclasses.replace(config, helpdesk=dataclasses.replace(config.helpdesk, inbound_smtp_port=0))
    try:
        run_event_loop(_serve(config, worker))
    except (KeyboardInterrupt, web.GracefulExit):
        pass
    except OSError as exc:
        print(f"portgate-server: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command is not None:
        return int(args.handler(args))
    try:
        config = load_config(
            args.config,
            data_dir=args.data_dir,
            host=args.host,
            port=args.port,
            workers=args.workers,
            demo=True if args.demo else None,
        )
    except ConfigError as exc:
        print(f"portgate-server: configuration error: {exc}", file=sys.stderr)
        return 2
    setup_logging(config.log_level)
    if config.workers == 1:
        return _run(config)
    from server.workers import run_workers

    try:
        return run_workers(config, lambda link: _run(config, link))
    except OSError as exc:
        print(f"portgate-server: cannot start: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
