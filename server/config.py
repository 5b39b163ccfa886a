"""Server settings: a TOML file plus ``PORTGATE_*`` environment overrides, validated once at start.

Unknown keys are rejected and every error names the key and says why, so a typo in
``/etc/portgate/server.toml`` stops the service with a readable message instead of a silent default.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class ConfigError(ValueError):
    """A configuration value is missing, unknown or invalid; the message names the key."""


@dataclass(frozen=True)
class MailConfig:
    #: "folder" writes each message as an .eml file (demo default); "smtp" sends through SMTP.
    backend: str = "folder"
    host: str = "127.0.0.1"
    port: int = 25
    username: str = ""
    password: str = ""
    starttls: bool = False
    sender: str = "Portgate <no-reply@portgate.local>"
    folder: str = ""  # defaults to <data_dir>/mail


@dataclass(frozen=True)
class SecurityConfig:
    #: HMAC secret for human checks and signed links; generated into the data dir when empty.
    secret_key: str = ""
    session_hours: int = 12
    cookie_secure: bool = False
    login_max_failures_per_account: int = 5
    login_max_failures_per_address: int = 20
    login_lock_minutes: int = 15
    password_min_length: int = 10
    #: "builtin" (self-hosted arithmetic check) or "hosted" (a reCAPTCHA-style siteverify URL).
    human_check: str = "builtin"
    hosted_captcha_url: str = ""
    hosted_captcha_secret: str = ""
    hosted_captcha_site_key: str = ""
    #: The provider's widget script (e.g. https://www.google.com/recaptcha/api.js); allowed by the CSP.
    hosted_captcha_script: str = ""


@dataclass(frozen=True)
class HelpdeskConfig:
    """``[helpdesk]``: as the file or the environment gives them; checked by ``helpdesk.settings``."""

    areas: str = "customer_service,sales,technical_support"
    attachment_max_bytes: int = 5 * 1024 * 1024
    attachment_max_files: int = 5
    attachment_types: str = "png,jpg,jpeg,gif,pdf,txt,log,csv,xml,zip"
    #: At most this many machine deactivations per serial within the window (a serial is not a token
    #: to pass round an office endlessly).
    max_deactivations: int = 3
    deactivation_window_days: int = 30
    #: 0 keeps the inbound SMTP receiver (e-mailed replies into ticket threads) off.
    inbound_smtp_port: int = 0
    inbound_smtp_host: str = "127.0.0.1"
    #: The address replies go to, as ``local+<token>@domain``; defaults to ``support_email``.
    inbound_address: str = ""


@dataclass(frozen=True)
class Config:
    data_dir: str = "./data"
    host: str = "127.0.0.1"
    port: int = 8080
    #: Public base URL used in e-mailed links.
    base_url: str = ""
    default_language: str = "es"
    #: The terminal's time zone (IANA name): pages, printed tickets and mail show times in it, and
    #: times typed into forms or CSV files without an offset are read in it. Stored times are UTC.
    timezone: str = "UTC"
    support_email: str = "soporte@portgate.local"
    demo: bool = False
    log_level: str = "INFO"
    db_readers: int = 4
    #: Server processes sharing the port (see ``server.workers``); 1 runs everything in one process.
    workers: int = 1
    mail: MailConfig = field(default_factory=MailConfig)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    helpdesk: HelpdeskConfig = field(default_factory=HelpdeskConfig)

    @property
    def zone(self) -> ZoneInfo:
        """:attr:`timezone` as a tzinfo (checked by :func:`validate`)."""
        return _zone(self.timezone)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def db_path(self) -> Path:
        return self.data_path / "portgate.db"

    @property
    def public_url(self) -> str:
        return (self.base_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def mail_folder(self) -> Path:
        return Path(self.mail.folder) if self.mail.folder else self.data_path / "mail"


_LANGUAGES = ("es", "en")


@functools.cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _coerce(key: str, value: Any, target: type) -> Any:
    """Convert ``value`` (from TOML or an environment string) to ``target`` or raise ConfigError."""
    if target is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if target is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a whole number, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a whole number, got {value!r}")
    if target is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected text, got {value!r}")
    raise ConfigError(f"{key}: unsupported type")  # pragma: no cover - programming error


def _build(cls: type, raw: dict[str, Any], prefix: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"{prefix}{unknown[0]}: unknown setting (allowed: {', '.join(sorted(fields))})")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        f = fields[name]
        key = f"{prefix}{name}"
        ftype = f.type if isinstance(f.type, type) else eval(f.type)  # noqa: S307 - our own annotations
        if dataclasses.is_dataclass(ftype):
            if not isinstance(value, dict):
                raise ConfigError(f"{key}: expected a [{key}] table")
            values[name] = _build(ftype, value, f"{key}.")
        else:
            values[name] = _coerce(key, value, ftype)
    return cls(**values)


#: ``PORTGATE_*`` variables that are not settings: the config file's path and a developer switch.
_NOT_SETTINGS = frozenset({"PORTGATE_CONFIG", "PORTGATE_STRICT_TEMPLATES"})


def _env_overrides(environ: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """``PORTGATE_PORT=9000`` → ``{"port": "9000"}``; ``PORTGATE_MAIL__HOST`` → ``{"mail": {"host": ..}}``.

    Also returns dotted key → variable name, so an error can point at the variable that caused it.
    """
    out: dict[str, Any] = {}
    names: dict[str, str] = {}
    for name, value in sorted(environ.items()):
        if not name.startswith("PORTGATE_") or name in _NOT_SETTINGS:
            continue
        parts = name[len("PORTGATE_") :].lower().split("__")
        node = out
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{name}: {'.'.join(parts[:-1])} is a single value, not a table")
            node = child
        node[parts[-1]] = value
        names[".".join(parts)] = name
    return out, names


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def validate(config: Config) -> Config:
    """Check cross-field rules that a type alone cannot express."""
    if not config.data_dir.strip():
        raise ConfigError("data_dir: must not be empty")
    if config.base_url and not config.base_url.startswith(("https://", "http://")):
        raise ConfigError(f"base_url: must start with http:// or https://, got {config.base_url!r}")
    if not 1 <= config.port <= 65535:
        raise ConfigError(f"port: must be between 1 and 65535, got {config.port}")
    if config.default_language not in _LANGUAGES:
        raise ConfigError(f"default_language: must be one of {', '.join(_LANGUAGES)}")
    try:
        _zone(config.timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ConfigError(
            f"timezone: unknown time zone {config.timezone[:60]!r} (an IANA name such as America/Guayaquil or UTC)"
        ) from None
    if config.log_level.upper() not in _LOG_LEVELS:
        raise ConfigError(f"log_level: must be one of {', '.join(_LOG_LEVELS)}")
    if not 1 <= config.db_readers <= 64:
        raise ConfigError("db_readers: must be between 1 and 64")
    if not 1 <= config.workers <= 64:
        raise ConfigError(f"workers: must be between 1 and 64, got {config.workers}")
    if config.mail.backend not in ("folder", "smtp"):
        raise ConfigError("mail.backend: must be 'folder' or 'smtp'")
    if not 1 <= config.mail.port <= 65535:
        raise ConfigError("mail.port: must be between 1 and 65535")
    sec = config.security
    if sec.human_check not in ("builtin", "hosted"):
        raise ConfigError("security.human_check: must be 'builtin' or 'hosted'")
    if sec.human_check == "hosted":
        for name in ("hosted_captcha_url", "hosted_captcha_secret", "hosted_captcha_site_key"):
            if not getattr(sec, name):
                raise ConfigError(f"security.{name}: required when security.human_check = 'hosted'")
        if not sec.hosted_captcha_url.startswith(("https://", "http://")):
            raise ConfigError("security.hosted_captcha_url: must be an http(s) URL (the provider's siteverify)")
        if sec.hosted_captcha_script and not sec.hosted_captcha_script.startswith(("https://", "http://")):
            raise ConfigError("security.hosted_captcha_script: must be an http(s) URL (the provider's widget script)")
    if sec.password_min_length < 8:
        raise ConfigError("security.password_min_length: must be at least 8")
    for name in (
        "session_hours",
        "login_max_failures_per_account",
        "login_max_failures_per_address",
        "login_lock_minutes",
    ):
        if getattr(sec, name) < 1:
            raise ConfigError(f"security.{name}: must be at least 1")
    from server.helpdesk.settings import settings_for  # the [helpdesk] section's own checks

    settings_for(config)
    return config


def load_config(
    path: str | os.PathLike[str] | None = None,
    environ: dict[str, str] | None = None,
    **overrides: Any,
) -> Config:
    """Read the TOML file (if any), apply ``PORTGATE_*`` variables, then ``overrides``; validate."""
    environ = dict(os.environ if environ is None else environ)
    raw: dict[str, Any] = {}
    path = path or environ.get("PORTGATE_CONFIG")
    if path:
        try:
            with open(path, "rb") as fh:
                raw = tomllib.load(fh)
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {path}: not found") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path}: not valid TOML ({exc})") from exc
        except OSError as exc:
            raise ConfigError(f"config file {path}: cannot be read ({exc.strerror or exc})") from exc
    legacy = sorted(name for name in environ if name.startswith("HELPDESK_"))
    if legacy:
        raise ConfigError(
            f"{legacy[0]}: helpdesk settings moved to the [helpdesk] table of the config file "
            f"(or PORTGATE_HELPDESK__{legacy[0].removeprefix('HELPDESK_')})"
        )
    env, env_names = _env_overrides(environ)
    given = {k: v for k, v in overrides.items() if v is not None}
    raw = _merge(_merge(raw, env), given)
    try:
        return validate(_build(Config, raw, ""))
    except ConfigError as exc:
        key = str(exc).split(":", 1)[0]
        culprits = [name for dotted, name in env_names.items() if dotted == key or dotted.startswith(key + ".")]
        if culprits and key not in given:
            raise ConfigError(f"{exc} (set by the environment variable {', '.join(culprits)})") from None
        raise
