"""The documentation keeps up with the code (as datasette's ``tests/test_docs.py`` does).

Keys and flags are enumerated from the code itself (the settings dataclasses, the argparse
parsers), so a new setting or flag fails here until docs/configuration.md describes it.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest

from gate_agent.cli import build_parser as agent_parser
from gate_agent.config import AgentConfig, ScannerConfig
from gate_core.reasons import Reason
from gate_core.wire import TICKET_COLUMNS
from server.cli import build_parser as server_parser
from server.config import Config
from server.gate.redeem import CONFLICT_KINDS

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
CONFIGURATION = DOCS / "configuration.md"
PROTOCOL = DOCS / "protocol.md"


def section(path: Path, heading: str) -> str:
    """The text under ``heading`` (a whole heading line) up to the next heading of the same level or above."""
    text = path.read_text(encoding="utf-8")
    level = len(heading) - len(heading.lstrip("#"))
    assert "\n" + heading + "\n" in text, f"{path.name} has no heading {heading}"
    start = text.index("\n" + heading + "\n") + len(heading) + 2
    stop = re.compile(rf"^#{{1,{level}}} ", re.MULTILINE).search(text, start)
    return text[start : stop.start() if stop else len(text)]


def setting_keys(cls: type, prefix: str = "") -> Iterator[str]:
    """Every key a settings dataclass accepts, nested tables as ``table.key``."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            yield from setting_keys(hints[f.name], f"{prefix}{f.name}.")
        else:
            yield prefix + f.name


def test_every_server_setting_is_documented_with_its_variable() -> None:
    text = section(CONFIGURATION, "## Server settings")
    keys = list(setting_keys(Config))
    assert len(keys) > 30, "the settings were not enumerated"
    for key in keys:
        variable = "PORTGATE_" + key.upper().replace(".", "__")
        assert f"`{key}`" in text, f"server setting {key} is not in docs/configuration.md"
        assert f"`{variable}`" in text, f"{variable} (server setting {key}) is not in docs/configuration.md"


def test_every_agent_setting_is_documented_with_its_variable() -> None:
    text = section(CONFIGURATION, "## Agent settings")
    keys = [key for key in setting_keys(AgentConfig) if key != "scanners"]
    assert "verdict_hold_s" in keys
    for key in keys:
        assert f"`{key}`" in text, f"agent setting {key} is not in docs/configuration.md"
        assert f"`PORTGATE_AGENT_{key.upper()}`" in text, f"PORTGATE_AGENT_{key.upper()} is not documented"
    for key in setting_keys(ScannerConfig, "scanner."):
        assert f"`{key}`" in text, f"scanner setting {key} is not in docs/configuration.md"


def commands(parser: argparse.ArgumentParser, name: str) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """(full command name, its help, its parser) for a program and each of its subcommands."""
    yield name, parser.description or "", parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for sub, subparser in action.choices.items():
                yield f"{name} {sub}", helps.get(sub) or "", subparser


def command_docs() -> Iterator[tuple[str, str, str, argparse.ArgumentParser]]:
    """(command, its help, its section of docs/configuration.md, its parser) for both programs."""
    for name, build in (("portgate-server", server_parser), ("portgate-agent", agent_parser)):
        for command, help_text, parser in commands(build(), name):
            heading = "### " if command == name else "#### "
            yield command, help_text, section(CONFIGURATION, f"{heading}`{command}`"), parser


@pytest.mark.parametrize("program", ["portgate-server", "portgate-agent"])
def test_every_command_is_documented_and_has_help(program: str) -> None:
    found = [(command, help_text, text) for command, help_text, text, _parser in command_docs()]
    found = [item for item in found if item[0].split()[0] == program]
    assert found, program
    for command, help_text, text in found:
        assert help_text.strip(), f"{command} has no help text"
        assert text.strip(), f"{command} has an empty section in docs/configuration.md"


def test_every_flag_is_documented_and_has_help() -> None:
    agent_common = section(CONFIGURATION, "### `portgate-agent`")
    checked = 0
    for command, _help, text, parser in command_docs():
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            label = action.option_strings[-1] if action.option_strings else (action.metavar or action.dest)
            assert action.help and action.help.strip(), f"{command} {label} has no help text"
            where = text + (agent_common if command.startswith("portgate-agent ") else "")
            assert f"`{label}" in where, f"{command} {label} is not in its section of docs/configuration.md"
            checked += 1
    assert checked > 15


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: p.name)
def test_relative_links_point_to_files_that_exist(path: Path) -> None:
    for target in LINK.findall(path.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue  # a URL, or a heading of the same page
        file = (path.parent / target.split("#")[0]).resolve()
        assert file.exists(), f"{path.name} links to {target}, which does not exist"


def test_readme_gives_exactly_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = README.read_text(encoding="utf-8")
    assert sorted(set(re.findall(r"\./portgate\.sh (\w+)", readme))) == ["demo", "test"]
    script = (ROOT / "portgate.sh").read_text(encoding="utf-8")
    assert sorted(re.findall(r"^    (\w+)\)$", script, re.MULTILINE)) == ["demo", "test"]
    ci = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#") and not line.startswith(("set ", "cd "))
    ]
    assert ci == ["./portgate.sh test"]


def test_protocol_page_explains_every_reason_column_and_conflict_kind() -> None:
    text = PROTOCOL.read_text(encoding="utf-8")
    for name in [*(reason.value for reason in Reason), *TICKET_COLUMNS, *CONFLICT_KINDS]:
        assert f"\n| `{name}` |" in text, f"docs/protocol.md has no table row explaining {name}"


#: Codes raised only on portal pages (forms), never answered by the API.
PORTAL_ONLY_CODES = {"csrf", "already_confirmed", "invalid_link"}


def api_error_codes() -> set[str]:
    """Stable error codes the server's code can answer with, read from its source."""
    sources = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "server").rglob("*.py"))
    codes = set(re.findall(r'ApiError\(\s*\d{3},\s*"(\w+)"', sources))
    codes |= set(re.findall(r'_unavailable\(request, "(\w+)"', sources))
    codes |= set(re.findall(r'json_error\(request, \d{3}, "(\w+)"', sources))
    codes |= set(re.findall(r'(?:Ticket|Licence|Helpdesk|CompanyUser|Enrol|Conflict)Error\(\s*"(\w+)"', sources))
    codes |= set(re.findall(r'LoginOutcome\("(\w+)"', sources)) - {"ok", "choose"}  # both answer 200
    from server.web import _HTTP_CODES

    return (codes | set(_HTTP_CODES.values())) - PORTAL_ONLY_CODES


def test_readme_names_every_api_error_code() -> None:
    text = section(README, "## The API")
    codes = api_error_codes()
    assert {"invalid", "scan_id_taken", "storage_unavailable", "machine_limit"} <= codes
    missing = sorted(code for code in codes if f"`{code}`" not in text)
    assert not missing, f"the README's API section does not name these error codes: {missing}"
