"""Server settings: a TOML file plus ``PORTGATE_*`` environment overrides, validated once at start.

The schema on :mod:`gate_core.settings`' strict base: unknown keys are rejected and every error names
the key and says why, so a typo in ``/etc/portgate/server.toml`` stops the service with a readable
message instead of a silent default.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import re
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gate_core.settings import (
    AtLeast,
    Between,
    Folder,
    HttpUrl,
    Language,
    OneOf,
    Port,
    Settings,
    SettingsError,
    load_settings,
)


class ConfigError(SettingsError):
    """A configuration value is missing, unknown or invalid; the message names the key."""


_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@functools.cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _known_zone(name: str) -> str | None:
    """Why ``name`` is not a time zone this machine knows, or None."""
    try:
        _zone(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return f"unknown time zone {name[:60]!r} (an IANA name such as America/Guayaquil or UTC)"
    return None


_DB_SCHEMES = ("sqlite", "postgresql", "postgres")
_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(:[0-9]{1,5})?$")


def redact_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``: safe for logs and error messages."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    user, _, hosts = parts.netloc.rpartition("@")
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user.partition(':')[0]}:***@{hosts}"))


def _postgres_url_problem(parts: urllib.parse.SplitResult) -> str | None:
    hosts = parts.netloc.rpartition("@")[2]
    if not hosts or not all(_HOST_PORT.match(host) for host in hosts.split(",")):
        return "names no host, or a host:port that is not one (host1:5432,host2:5432 for several)"
    if any(int(port) > 65535 for port in re.findall(r":([0-9]+)(?=,|$)", hosts)):
        return "has a port above 65535"
    if not parts.path.strip("/"):
        return "names no database (postgresql://user@host:5432/portgate)"
    return None


def _database_url(value: str) -> str | None:
    """Why ``value`` is not a database URL Portgate can open, or None. The password is never shown."""
    if not value:
        return None  # the default: <data_dir>/portgate.db
    parts = urllib.parse.urlsplit(value)
    shown = repr(redact_url(value))[:80]
    if parts.scheme not in _DB_SCHEMES:
        return f"must start with sqlite:/// or postgresql://, got {shown}"
    if parts.scheme == "sqlite":
        if parts.netloc or not parts.path or parts.path.endswith("/"):
            return f"must be sqlite:///path/to/portgate.db (three slashes, then the file), got {shown}"
        return None
    why = _postgres_url_problem(parts)
    return f"{why}: {shown}" if why else None


@dataclass(frozen=True)
class MailConfig(Settings):
    #: "folder" writes each message as an .eml file (demo default); "smtp" sends through SMTP.
    backend: Annotated[str, OneOf(("folder", "smtp"), why="must be 'folder' or 'smtp'")] = "folder"
    host: str = "127.0.0.1"
    port: Port = 25
    username: str = ""
    password: str = ""
    starttls: bool = False
    sender: str = "Portgate <no-reply@portgate.local>"
    folder: str = ""  # defaults to <data_dir>/mail


_CAPTCHA_URLS = {
    "hosted_captcha_url": HttpUrl(why="must be an http(s) URL (the provider's siteverify)"),
    "hosted_captcha_script": HttpUrl(optional=True, why="must be an http(s) URL (the provider's widget script)"),
}


def _networks(text: str) -> str | None:
    """Why ``text`` is not a comma-separated list of addresses or CIDR networks, or None."""
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        try:
            ipaddress.ip_network(part, strict=False)
        except ValueError:
            return f"must be addresses or networks such as 10.0.0.0/8, separated by commas, got {part[:60]!r}"
    return None


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_address(text: str | None) -> Address | None:
    """A peer's address (an IPv4-mapped IPv6 one as IPv4), or None for a Unix socket, a name or garbage."""
    try:
        address = ipaddress.ip_address((text or "").strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def in_networks(address: Address | None, networks: Sequence[Network]) -> bool:
    return address is not None and any(address in net for net in networks if net.version == address.version)


def parse_networks(text: str) -> tuple[Network, ...]:
    """A comma-separated list of addresses or networks (checked by ``_networks`` when the settings are read)."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class SecurityConfig(Settings):
    #: HMAC secret for human checks and signed links; generated into the data dir when empty.
    secret_key: str = ""
    session_hours: Annotated[int, AtLeast(1)] = 12
    cookie_secure: bool = False
    login_max_failures_per_account: Annotated[int, AtLeast(1)] = 5
    login_max_failures_per_address: Annotated[int, AtLeast(1)] = 20
    login_lock_minutes: Annotated[int, AtLeast(1)] = 15
    password_min_length: Annotated[int, AtLeast(8)] = 10
    #: "builtin" (self-hosted arithmetic check) or "hosted" (a reCAPTCHA-style siteverify URL).
    human_check: Annotated[str, OneOf(("builtin", "hosted"), why="must be 'builtin' or 'hosted'")] = "builtin"
    hosted_captcha_url: str = ""
    hosted_captcha_secret: str = ""
    hosted_captcha_site_key: str = ""
    #: The provider's widget script (e.g. https://www.google.com/recaptcha/api.js); allowed by the CSP.
    hosted_captcha_script: str = ""
    #: Reverse proxies (HAProxy, nginx) whose X-Forwarded-For names the client (CIDR, comma-separated); empty:
    #: none, every address is the connection's own (see server.proxies).
    trusted_proxies: Annotated[str, _networks] = ""

    @property
    def proxy_networks(self) -> tuple[Network, ...]:
        return parse_networks(self.trusted_proxies)

    def check(self, prefix: str) -> None:
        """A hosted human check needs its provider's URL, secret and site key; the builtin one none."""
        if self.human_check != "hosted":
            return
        for name in ("hosted_captcha_url", "hosted_captcha_secret", "hosted_captcha_site_key"):
            if not getattr(self, name):
                raise ConfigError(f"{prefix}{name}: required when {prefix}human_check = 'hosted'")
        for name, rule in _CAPTCHA_URLS.items():
            why = rule(getattr(self, name))
            if why:
                raise ConfigError(f"{prefix}{name}: {why}")


@dataclass(frozen=True)
class HelpdeskConfig(Settings):
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


def _sms_body_template(text: str) -> str | None:
    """Why ``text`` is not a JSON object whose strings carry ``{phone}`` and ``{text}``, or None."""
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"must be a JSON object, got invalid JSON ({exc.msg} at character {exc.pos})"
    if not isinstance(body, dict):
        return 'must be a JSON object such as {"to": "{phone}", "text": "{text}"}'
    missing = [name for name in ("{phone}", "{text}") if name not in json.dumps(body, ensure_ascii=False)]
    return f"must contain {' and '.join(missing)} in its string values" if missing else None


@dataclass(frozen=True)
class SmsConfig(Settings):
    """``[sms]``: where registration codes are texted (see ``server.sms``)."""

    #: "log" appends each message to ``<data_dir>/sms.log`` (demo); "http" posts it to a gateway.
    backend: Annotated[str, OneOf(("log", "http"), why="must be 'log' or 'http'")] = "log"
    url: Annotated[str, HttpUrl(optional=True, why="must be an http(s) URL (the gateway's send endpoint)")] = ""
    auth: Annotated[str, OneOf(("none", "bearer", "basic"), why="must be 'none', 'bearer' or 'basic'")] = "none"
    token: str = ""
    username: str = ""
    password: str = ""
    #: The JSON posted per message; ``{phone}`` and ``{text}`` in its strings are replaced.
    body_template: Annotated[str, _sms_body_template] = '{"to": "{phone}", "text": "{text}"}'
    timeout_s: Annotated[float, Between(0.5, 60, "seconds")] = 10.0
    #: Further tries after a 5xx answer, a timeout or a refused connection (a 4xx is not retried).
    retries: Annotated[int, Between(0, 10)] = 2
    #: Wait before the first retry; each next wait doubles.
    backoff_s: Annotated[float, Between(0, 60, "seconds")] = 1.0
    #: Registration codes one client address may have texted per hour, to any phones (each text costs
    #: money: this stops a script pumping texts to many numbers); 0 turns the limit off.
    max_codes_per_address_per_hour: Annotated[int, Between(0, 100_000)] = 10

    def check(self, prefix: str) -> None:
        """The gateway needs its URL, and the credentials its ``auth`` names (and no others)."""
        if self.backend == "http" and not self.url:
            raise ConfigError(f"{prefix}url: required when {prefix}backend = 'http'")
        if ":" in self.username:
            raise ConfigError(f"{prefix}username: must not contain ':' (basic auth joins user and password with it)")
        needed = {"none": (), "bearer": ("token",), "basic": ("username", "password")}[self.auth]
        for name in ("token", "username", "password"):
            if name in needed and not getattr(self, name):
                raise ConfigError(f"{prefix}{name}: required when {prefix}auth = '{self.auth}'")
            if name not in needed and getattr(self, name):
                raise ConfigError(f"{prefix}{name}: not used when {prefix}auth = '{self.auth}'; remove it")


@dataclass(frozen=True)
class MetricsConfig(Settings):
    """``[metrics]``: the Prometheus endpoint ``/metrics`` (see ``server.metrics``); off unless enabled."""

    enabled: bool = False
    #: When set, a scrape must send ``Authorization: Bearer <token>``.
    token: str = ""
    #: Addresses a scrape may come from (CIDR, comma-separated); empty allows any address with the token.
    allow: Annotated[str, _networks] = "127.0.0.1/32, ::1/128"

    def check(self, prefix: str) -> None:
        """Traffic figures are not for everyone: an enabled endpoint needs a token or an address list."""
        if self.enabled and not self.token and not self.allow.strip():
            raise ConfigError(f"{prefix}allow: set it or {prefix}token when {prefix}enabled = true")

    @property
    def networks(self) -> tuple[Network, ...]:
        """:attr:`allow` parsed (checked when the settings are read)."""
        return parse_networks(self.allow)


@dataclass(frozen=True)
class Config(Settings):
    data_dir: Folder = "./data"
    host: str = "127.0.0.1"
    port: Port = 8080
    #: Public base URL used in e-mailed links.
    base_url: Annotated[str, HttpUrl(optional=True)] = ""
    default_language: Language = "es"
    #: The terminal's time zone (IANA name): pages, printed tickets and mail show times in it, and
    #: times typed into forms or CSV files without an offset are read in it. Stored times are UTC.
    timezone: Annotated[str, _known_zone] = "UTC"
    support_email: str = "soporte@portgate.local"
    demo: bool = False
    log_level: Annotated[str, OneOf(_LOG_LEVELS, ignore_case=True)] = "INFO"
    #: ``sqlite:///path/portgate.db`` or ``postgresql://user:pass@host1:5432,host2:5432/db?…``; empty
    #: means ``sqlite:///<data_dir>/portgate.db``.
    database_url: Annotated[str, _database_url] = ""
    db_readers: Annotated[int, Between(1, 64)] = 4
    #: PostgreSQL: connections each server process keeps at most (readers and the writer share them).
    db_pool_size: Annotated[int, Between(2, 200)] = 8
    mail: MailConfig = field(default_factory=MailConfig)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    helpdesk: HelpdeskConfig = field(default_factory=HelpdeskConfig)
    sms: SmsConfig = field(default_factory=SmsConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)

    def check(self, prefix: str) -> None:
        """The ``[helpdesk]`` table's own rules (some read ``support_email``) live with the helpdesk."""
        from server.helpdesk.settings import settings_for  # it imports this module

        settings_for(self)

    @property
    def zone(self) -> ZoneInfo:
        """:attr:`timezone` as a tzinfo (checked when the settings are read)."""
        return _zone(self.timezone)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def db_url(self) -> str:
        """:attr:`database_url`, or the SQLite file under :attr:`data_dir` when it is not set."""
        return self.database_url or f"sqlite://{self.data_path.absolute() / 'portgate.db'}"

    @property
    def db_path(self) -> Path:
        """The SQLite file (for SQLite-only tools; meaningless on PostgreSQL)."""
        if self.database_url.startswith("sqlite:///"):
            return Path(self.database_url.removeprefix("sqlite://"))
        return self.data_path / "portgate.db"

    @property
    def public_url(self) -> str:
        return (self.base_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def mail_folder(self) -> Path:
        return Path(self.mail.folder) if self.mail.folder else self.data_path / "mail"


#: ``PORTGATE_*`` variables that are not settings: a developer switch (``PORTGATE_CONFIG`` names the file).
_NOT_SETTINGS = frozenset({"PORTGATE_STRICT_TEMPLATES"})


def _refuse_legacy_helpdesk_variables(environ: dict[str, str]) -> None:
    legacy = sorted(name for name in environ if name.startswith("HELPDESK_"))
    if legacy:
        raise ConfigError(
            f"{legacy[0]}: helpdesk settings moved to the [helpdesk] table of the config file "
            f"(or PORTGATE_HELPDESK__{legacy[0].removeprefix('HELPDESK_')})"
        )


def load_config(
    path: str | os.PathLike[str] | None = None,
    environ: dict[str, str] | None = None,
    **overrides: Any,
) -> Config:
    """Read the TOML file (if any), apply ``PORTGATE_*`` variables, then ``overrides``; validate."""
    environ = dict(os.environ if environ is None else environ)
    _refuse_legacy_helpdesk_variables(environ)
    return load_settings(
        Config, path, environ, overrides, env_prefix="PORTGATE_", error=ConfigError, ignore=_NOT_SETTINGS
    )
