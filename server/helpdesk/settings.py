"""Helpdesk settings: areas, attachment limits, the machine-deactivation quota, the inbound SMTP port.

:class:`HelpdeskConfig` is shaped like a ``server.config`` section (only str/int fields) so it can
become ``Config.helpdesk`` (a ``[helpdesk]`` table, ``PORTGATE_HELPDESK__*`` variables) unchanged.
Until then it is read from ``HELPDESK_*`` environment variables: a ``PORTGATE_*`` name would be
rejected by the config loader as an unknown setting.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from server.config import Config, ConfigError
from server.i18n import N_

#: Labels of the areas a ticket can be addressed to; a configured area without one shows its code.
AREA_LABELS = {
    "customer_service": N_("Customer service"),
    "sales": N_("Sales"),
    "technical_support": N_("Technical support"),
}

#: Extension → (content type served, signature family checked against the file's first bytes).
FILE_TYPES = {
    "png": ("image/png", "png"),
    "jpg": ("image/jpeg", "jpeg"),
    "jpeg": ("image/jpeg", "jpeg"),
    "gif": ("image/gif", "gif"),
    "pdf": ("application/pdf", "pdf"),
    "zip": ("application/zip", "zip"),
    "txt": ("text/plain", "text"),
    "log": ("text/plain", "text"),
    "csv": ("text/csv", "text"),
    "xml": ("application/xml", "text"),
}


@dataclass(frozen=True)
class HelpdeskConfig:
    """The raw settings, as a config file or the environment gives them."""

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
class HelpdeskSettings:
    """Validated settings the helpdesk code reads (``app[HELPDESK_SETTINGS]``)."""

    areas: tuple[str, ...]
    attachment_max_bytes: int
    attachment_max_files: int
    attachment_types: frozenset[str]
    max_deactivations: int
    deactivation_window_days: int
    inbound_smtp_port: int
    inbound_smtp_host: str
    inbound_address: str
    attachments_dir: Path

    def reply_address(self, token: str) -> str:
        """``soporte@x`` + token → ``soporte+<token>@x``: a reply carries its ticket in the address."""
        local, _, domain = self.inbound_address.partition("@")
        return f"{local}+{token}@{domain}"


HELPDESK_SETTINGS = web.AppKey("helpdesk_settings", HelpdeskSettings)

_ENV_PREFIX = "HELPDESK_"


def config_from_environ(environ: Mapping[str, str]) -> HelpdeskConfig:
    """``HELPDESK_INBOUND_SMTP_PORT=2525`` → ``inbound_smtp_port=2525``; unknown names are errors."""
    fields = {f.name: f for f in dataclasses.fields(HelpdeskConfig)}
    values: dict[str, object] = {}
    for name, raw in environ.items():
        if not name.startswith(_ENV_PREFIX):
            continue
        key = name[len(_ENV_PREFIX) :].lower()
        if key not in fields:
            raise ConfigError(f"{name}: unknown helpdesk setting (allowed: {', '.join(sorted(fields))})")
        if fields[key].type in (int, "int"):
            try:
                values[key] = int(raw.strip())
            except ValueError:
                raise ConfigError(f"{name}: expected a whole number, got {raw!r}") from None
        else:
            values[key] = raw
    return HelpdeskConfig(**values)  # type: ignore[arg-type]


def settings_for(config: Config, environ: Mapping[str, str] | None = None) -> HelpdeskSettings:
    """The helpdesk settings of ``config`` (its ``helpdesk`` section once it has one, else the environment)."""
    raw = getattr(config, "helpdesk", None)
    if not isinstance(raw, HelpdeskConfig):
        raw = config_from_environ(os.environ if environ is None else environ)
    areas = tuple(a.strip() for a in raw.areas.split(",") if a.strip())
    if not areas or any(not a.replace("_", "").isalnum() or len(a) > 40 for a in areas):
        raise ConfigError("helpdesk.areas: a comma-separated list of area codes (letters, digits, _)")
    types = frozenset(t.strip().lower().lstrip(".") for t in raw.attachment_types.split(",") if t.strip())
    unknown = sorted(types - set(FILE_TYPES))
    if not types or unknown:
        raise ConfigError(
            f"helpdesk.attachment_types: {', '.join(unknown) or 'empty'} not supported "
            f"(supported: {', '.join(sorted(FILE_TYPES))})"
        )
    for name, low, high in (
        ("attachment_max_bytes", 1, 50 * 1024 * 1024),
        ("attachment_max_files", 1, 20),
        ("max_deactivations", 1, 1000),
        ("deactivation_window_days", 1, 3650),
        ("inbound_smtp_port", 0, 65535),
    ):
        if not low <= getattr(raw, name) <= high:
            raise ConfigError(f"helpdesk.{name}: must be between {low} and {high}, got {getattr(raw, name)}")
    address = raw.inbound_address or config.support_email
    if address.count("@") != 1 or "+" in address.split("@")[0]:
        raise ConfigError(
            f"helpdesk.inbound_address: expected a plain address like soporte@example.com, got {address!r}"
        )
    return HelpdeskSettings(
        areas=areas,
        attachment_max_bytes=raw.attachment_max_bytes,
        attachment_max_files=raw.attachment_max_files,
        attachment_types=types,
        max_deactivations=raw.max_deactivations,
        deactivation_window_days=raw.deactivation_window_days,
        inbound_smtp_port=raw.inbound_smtp_port,
        inbound_smtp_host=raw.inbound_smtp_host,
        inbound_address=address.lower(),
        attachments_dir=config.data_path / "attachments",
    )
