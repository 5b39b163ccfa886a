"""``portgate-agent run``, ``enrol`` and ``outbox``: the long-running kiosk, its enrolment, its outbox.

Settings, scanners or a data folder that cannot work raise ``AgentConfigError``; ``cli.main``
reports it as a configuration error (exit status 2) for every command.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable

from gate_agent.config import load_agent_config

Handler = Callable[[argparse.Namespace], int]


def _config(args: argparse.Namespace):  # noqa: ANN202
    return load_agent_config(
        args.config, server_url=args.server, data_dir=args.data_dir, ui_port=getattr(args, "ui_port", None)
    )


def _kiosk_command(
    commands: argparse._SubParsersAction, name: str, help: str, description: str, handler: Handler
) -> argparse.ArgumentParser:
    """A subcommand that works on this kiosk's settings and data (``--config``, ``--server``, ``--data-dir``)."""
    parser = commands.add_parser(name, help=help, description=description)
    parser.add_argument("--config", help="agent TOML file (default: $PORTGATE_AGENT_CONFIG)")
    parser.add_argument("--server", help="server base URL, e.g. http://portgate.lan:8080")
    parser.add_argument("--data-dir", help="folder for the agent's SQLite cache and outbox")
    parser.set_defaults(handler=handler)
    return parser


def add_run_command(commands: argparse._SubParsersAction) -> None:
    parser = _kiosk_command(
        commands,
        "run",
        "run the kiosk: scanners, local decisions, sync, kiosk screen",
        "Run the gate agent until stopped (SIGTERM/Ctrl-C).",
        _run,
    )
    parser.add_argument("--ui-port", type=int, help="port of the kiosk screen on localhost (default 8081)")


def add_enrol_command(commands: argparse._SubParsersAction) -> None:
    parser = _kiosk_command(
        commands,
        "enrol",
        "enrol this box as a kiosk with a one-time code from the supervisor",
        "Exchange the one-time enrolment code shown on the supervisor's Kiosks page for this kiosk's access token.",
        _enrol,
    )
    parser.add_argument("--code", required=True, help="the one-time enrolment code")


def add_outbox_command(commands: argparse._SubParsersAction) -> None:
    parser = _kiosk_command(
        commands,
        "outbox",
        "show the scans waiting to be uploaded and those the server refused",
        "Show how many scans wait in the kiosk's outbox and list the ones the server refused for good (with "
        "its reason); --retry queues those again, e.g. after the server was updated.",
        _outbox,
    )
    parser.add_argument("--retry", action="store_true", help="queue the refused scans for upload again")


def _outbox(args: argparse.Namespace) -> int:
    from gate_agent.app import open_store

    store = open_store(_config(args))
    try:
        refused = store.rejected()
        print(f"waiting to be uploaded: {store.pending_count()}")
        print(f"refused by the server: {len(refused)}")
        for scan_id, why in refused:
            print(f"  {scan_id}  {why}")
        if args.retry and refused:
            print(f"queued again: {store.retry_rejected()}")
    finally:
        store.close()
    return 0


def _setup_logging() -> None:
    from gate_core.logs import setup_logging

    setup_logging("INFO")
    # APScheduler says INFO twice per job run: two lines every two seconds in the journal, forever.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def _run(args: argparse.Namespace) -> int:
    config = _config(args)
    _setup_logging()
    from gate_agent.runner import run_agent

    return asyncio.run(run_agent(config))


def _enrol(args: argparse.Namespace) -> int:
    config = _config(args)
    logging.basicConfig(level=logging.WARNING)
    from gate_agent.app import open_store
    from gate_agent.enrolment import EnrolmentError, enrol

    store = open_store(config)
    try:
        answer = asyncio.run(enrol(config, store, args.code))
    except EnrolmentError as exc:
        print(f"portgate-agent: {exc}", file=sys.stderr)
        return 3
    finally:
        store.close()
    print(f"enrolled as kiosk {answer.get('name') or answer.get('kiosk_id')}; start it with `portgate-agent run`")
    return 0
