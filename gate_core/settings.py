"""One strict way to read a program's settings: a TOML file, then environment variables, then flags.

Each program declares its settings as frozen dataclasses deriving from :class:`Settings` (a table per
class, a key per field); a field's type says how a value is read and the rules in its ``Annotated[...]``
say what it may be. Unknown keys are refused, and every error names the key (``mail.port``,
``scanner[1].baudrate``) and why, so a typo stops the program with a readable message instead of a
silent default, as frigate's strict config base does. The server and the gate agent read booleans,
numbers, choices, URLs and folders through the same code here.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import typing
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar


class SettingsError(ValueError):
    """A setting is unknown, missing or invalid; the message starts with its key and says why."""

    @property
    def key(self) -> str:
        """The dotted key the message starts with (``mail.port``)."""
        return str(self).split(":", 1)[0]


class Settings:
    """Base of every settings table; subclasses are frozen dataclasses whose fields are its keys."""

    def check(self, prefix: str) -> None:
        """Rules that span several keys of the table; raise SettingsError naming ``prefix + key``."""


S = TypeVar("S", bound=Settings)

#: A rule takes a value already of the field's type and returns why it is refused, or None.
Rule = Callable[[Any], str | None]

#: Field metadata: the key in the file when it differs from the field's name (``[[scanner]]``).
KEY = "settings_key"


@dataclass(frozen=True)
class Between:
    """A number in ``[low, high]`` (or ``(low, high]`` with ``above_low``), ``unit`` said in the message."""

    low: float
    high: float
    unit: str = ""
    above_low: bool = False

    def __call__(self, value: float) -> str | None:
        low_ok = self.low < value if self.above_low else self.low <= value
        if low_ok and value <= self.high:
            return None
        unit = f" {self.unit}" if self.unit else ""
        return f"must be between {_number(self.low)} and {_number(self.high)}{unit}, got {value}"


@dataclass(frozen=True)
class AtLeast:
    low: int

    def __call__(self, value: int) -> str | None:
        return None if value >= self.low else f"must be at least {self.low}, got {value}"


@dataclass(frozen=True)
class OneOf:
    """One of ``choices``; ``ignore_case`` for names such as log levels; ``why`` to word it otherwise."""

    choices: tuple[object, ...]
    ignore_case: bool = False
    why: str = ""

    def __call__(self, value: object) -> str | None:
        seen = value.upper() if self.ignore_case and isinstance(value, str) else value
        if seen in self.choices:
            return None
        why = self.why or f"must be one of {', '.join(map(str, self.choices))}"
        return f"{why}, got {_shown(value)}"


@dataclass(frozen=True)
class NotEmpty:
    why: str = "must not be empty"

    def __call__(self, value: str) -> str | None:
        return None if value.strip() else self.why


@dataclass(frozen=True)
class HttpUrl:
    """An ``http://`` or ``https://`` address; ``optional`` lets it be empty (meaning "not set")."""

    optional: bool = False
    why: str = "must start with http:// or https://"

    def __call__(self, value: str) -> str | None:
        if (self.optional and not value) or value.startswith(("http://", "https://")):
            return None
        return f"{self.why}, got {_shown(value)}"


#: Types both programs use for the same kind of value.
Port = Annotated[int, Between(1, 65535)]
Folder = Annotated[str, NotEmpty()]
Language = Annotated[str, OneOf(("es", "en"))]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _shown(value: object) -> str:
    """``value`` as it appears in a message, cut short: it may be a long line from a file."""
    text = repr(value)
    return text if len(text) <= 62 else text[:59] + "...'"


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _boolean(key: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise SettingsError(f"{key}: expected true or false, got {_shown(value)}")


def _whole(key: str, value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise SettingsError(f"{key}: expected a whole number, got {_shown(value)}")


def _real(key: str, value: object) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = math.nan
    else:
        number = math.nan
    if not math.isfinite(number):
        raise SettingsError(f"{key}: expected a number, got {_shown(value)}")
    return number


def _text(key: str, value: object) -> str:
    if isinstance(value, str):
        return value
    raise SettingsError(f"{key}: expected text, got {_shown(value)}")


_SCALARS: dict[type, Callable[[str, object], object]] = {bool: _boolean, int: _whole, float: _real, str: _text}


def _is_table(kind: object) -> bool:
    return isinstance(kind, type) and issubclass(kind, Settings) and dataclasses.is_dataclass(kind)


def _kind_and_rules(hint: object) -> tuple[object, tuple[Rule, ...]]:
    """``Annotated[int, Between(1, 9)]`` → ``(int, (Between(1, 9),))``; a bare type has no rules."""
    if typing.get_origin(hint) is Annotated:
        kind, *rules = typing.get_args(hint)
        return kind, tuple(rules)
    return hint, ()


def _read(key: str, raw: object, kind: object) -> object:
    """``raw`` read as ``kind``: a scalar, a table, or ``tuple[Table, ...]`` (an array of tables)."""
    if _is_table(kind):
        return read_table(typing.cast(type[Settings], kind), raw, key, f"[{key}]")
    if typing.get_origin(kind) is tuple:
        return _table_array(typing.get_args(kind)[0], raw, key)
    return _SCALARS[typing.cast(type, kind)](key, raw)


def _check_rules(key: str, value: object, rules: Collection[Rule]) -> None:
    for rule in rules:
        why = rule(value)
        if why:
            raise SettingsError(f"{key}: {why}")


def _table_array(table: type[Settings], raw: object, key: str) -> tuple[Settings, ...]:
    if not isinstance(raw, list):
        raise SettingsError(f"{key}: expected [[{key}]] tables")
    return tuple(read_table(table, item, f"{key}[{index}]", f"[[{key}]]") for index, item in enumerate(raw))


def _file_key(field: dataclasses.Field[Any]) -> str:
    return str(field.metadata.get(KEY, field.name))


def _default(field: dataclasses.Field[Any], key: str) -> object:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    raise SettingsError(f"{key}: required")


def read_table(schema: type[S], raw: object, key: str = "", header: str = "") -> S:
    """The table ``raw`` (from TOML, the environment or flags) as ``schema``; ``key`` names it in errors."""
    if not isinstance(raw, dict):
        raise SettingsError(f"{key}: expected a {header} table")
    prefix = f"{key}." if key else ""
    fields = {_file_key(f): f for f in dataclasses.fields(schema)}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise SettingsError(f"{prefix}{unknown[0]}: unknown setting (allowed: {', '.join(sorted(fields))})")
    hints = typing.get_type_hints(schema, include_extras=True)
    values: dict[str, Any] = {}
    for name, field in fields.items():
        kind, rules = _kind_and_rules(hints[field.name])
        value = _read(prefix + name, raw[name], kind) if name in raw else _default(field, prefix + name)
        _check_rules(prefix + name, value, rules)  # defaults too: a required text defaults to ""
        values[field.name] = value
    settings = schema(**values)
    settings.check(prefix)
    return settings


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The settings file at ``path`` as a table; a file that cannot be read is a SettingsError."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise SettingsError(f"config file {path}: not found") from None
    except UnicodeDecodeError:
        raise SettingsError(f"config file {path}: not valid TOML: not UTF-8 text (save it as UTF-8)") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {path}: not valid TOML ({exc})") from None
    except OSError as exc:
        raise SettingsError(f"config file {path}: cannot be read ({exc.strerror or exc})") from None


def environment_table(
    environ: Mapping[str, str], prefix: str, ignore: Collection[str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """``<prefix>PORT=9000`` → ``{"port": "9000"}``; ``<prefix>MAIL__HOST`` → ``{"mail": {"host": ..}}``.

    Also returns dotted key → variable name, so an error can point at the variable that caused it.
    """
    table: dict[str, Any] = {}
    variables: dict[str, str] = {}
    for name, value in sorted(environ.items()):
        if not name.startswith(prefix) or name in ignore:
            continue
        parts = name[len(prefix) :].lower().split("__")
        node = table
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise SettingsError(f"{name}: {'.'.join(parts[:-1])} is a single value, not a table")
            node = child
        node[parts[-1]] = value
        variables[".".join(parts)] = name
    return table, variables


def _merged(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def _naming_variable(message: str, key: str, variables: Mapping[str, str]) -> str:
    """``message`` plus the environment variable(s) that set ``key`` or a key inside it, if any."""
    culprits = [name for dotted, name in variables.items() if dotted == key or dotted.startswith(key + ".")]
    return f"{message} (set by the environment variable {', '.join(culprits)})" if culprits else message


def load_settings(
    schema: type[S],
    path: str | os.PathLike[str] | None,
    environ: Mapping[str, str],
    overrides: Mapping[str, object],
    *,
    env_prefix: str,
    error: type[SettingsError] = SettingsError,
    ignore: Collection[str] = (),
) -> S:
    """Read ``path`` (or the file ``<env_prefix>CONFIG`` names), then ``<env_prefix>*`` variables, then
    ``overrides`` (flags; None means not given), each later one winning; raise ``error`` naming the key."""
    file_variable = env_prefix + "CONFIG"
    given = {key: value for key, value in overrides.items() if value is not None}
    variables: dict[str, str] = {}
    try:
        path = path or environ.get(file_variable)
        from_file = read_toml(path) if path else {}
        from_environment, variables = environment_table(environ, env_prefix, {file_variable, *ignore})
        return read_table(schema, _merged(_merged(from_file, from_environment), given))
    except SettingsError as exc:
        message = str(exc) if exc.key in given else _naming_variable(str(exc), exc.key, variables)
        raise error(message) from None
