"""``portgate-server init``: set up a new installation from the command line (see server.install)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from server.config import ConfigError, load_config
from server.forms import ValidationFailed
from server.i18n import render
from server.install import (
    DEFAULT_GATE_MACHINES,
    DEFAULT_LICENCE_YEARS,
    AlreadySetUp,
    default_licence_until,
    set_up,
    validate_first_run,
)

#: Exit statuses: a value refused (naming its option), and a database that is already set up.
BAD_VALUE, ALREADY_SET_UP = 2, 3


def add_init_command(commands: argparse._SubParsersAction) -> None:
    """Register ``init`` and its options on the program's subcommands."""
    init = commands.add_parser(
        "init",
        help="set up a new installation: the operator company, its gate licence and the first administrator",
        description="Set up a new installation, once, before the service starts: create the database, the "
        "operator company with its gate licence serial (how many kiosks may enrol) and the first "
        "administrator, who then adds staff users in the portal. Refuses a database that is already set up.",
    )
    same = argparse.SUPPRESS  # given before or after "init", --config and --data-dir mean the same
    init.add_argument("--config", default=same, help="TOML settings file (default: $PORTGATE_CONFIG)")
    init.add_argument("--data-dir", default=same, help="folder for the SQLite file, mail and keys")
    init.add_argument("--operator-name", required=True, help="the terminal operator's company name")
    init.add_argument("--operator-tax-id", required=True, help="the operator's tax id (RUC/RFC)")
    init.add_argument("--operator-email", help="the operator's contact e-mail (default: the admin's)")
    init.add_argument("--operator-phone", help="the operator's contact phone")
    init.add_argument("--admin-login", required=True, help="user name of the first administrator")
    init.add_argument("--admin-email", required=True, help="e-mail of the first administrator")
    init.add_argument("--admin-name", help="full name of the first administrator (default: the login)")
    init.add_argument(
        "--password-stdin",
        action="store_true",
        required=True,
        help="read the administrator's password from standard input (never from the command line)",
    )
    init.add_argument(
        "--gate-machines",
        type=str,
        default=str(DEFAULT_GATE_MACHINES),
        help=f"how many gate kiosks the licence admits (default {DEFAULT_GATE_MACHINES})",
    )
    init.add_argument(
        "--licence-until",
        help=f"last day of the gate licence, YYYY-MM-DD (default: {DEFAULT_LICENCE_YEARS} years from today)",
    )
    init.set_defaults(handler=run_init)


def run_init(args: argparse.Namespace) -> int:
    """Validate the options, then set up the database; print what was made or why not."""
    try:
        config = load_config(getattr(args, "config", None), data_dir=getattr(args, "data_dir", None))
    except ConfigError as exc:
        print(f"portgate-server: configuration error: {exc}", file=sys.stderr)
        return BAD_VALUE
    now = datetime.now(UTC)
    today = now.astimezone(config.zone).date()
    data = {
        "operator_name": args.operator_name,
        "operator_tax_id": args.operator_tax_id,
        "operator_email": args.operator_email or "",
        "operator_phone": args.operator_phone or "",
        "admin_login": args.admin_login,
        "admin_email": args.admin_email,
        "admin_name": args.admin_name or "",
        "gate_machines": args.gate_machines,
        "licence_until": args.licence_until or default_licence_until(today).isoformat(),
        "password": sys.stdin.readline().rstrip("\r\n"),
    }
    try:
        values = validate_first_run(data, config.security.password_min_length, today)
    except ValidationFailed as exc:
        for field, message in exc.errors.items():
            option = "password-stdin" if field == "password" else field.replace("_", "-")
            print(f"portgate-server init: --{option}: {render('en', message)}", file=sys.stderr)
        return BAD_VALUE
    return _set_up(config, values, now)


def _set_up(config, values, now: datetime) -> int:  # noqa: ANN001 - a server.config.Config
    from server.db import Database

    db = Database(config.db_url, readers=1)
    try:
        db.migrate()
        made = db.write_sync(set_up, values, now)
    except AlreadySetUp as exc:
        print(f"portgate-server init: {exc}", file=sys.stderr)
        return ALREADY_SET_UP
    finally:
        db.close()
    print(
        f"portgate-server: set up {values['operator_name']} ({values['operator_tax_id']}); gate licence "
        f"{made['serial']} for {values['gate_machines']} kiosks until {values['licence_until']}; "
        f"the administrator {values['admin_login']} can sign in at {config.public_url}/login"
    )
    return 0
