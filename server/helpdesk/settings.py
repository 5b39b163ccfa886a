"""Helpdesk settings: areas, attachment limits, the machine-deactivation quota, the inbound SMTP port.

They come from the ``[helpdesk]`` table of the server's configuration (``Config.helpdesk``,
``PORTGATE_HELPDESK__*`` variables); :func:`settings_for` checks them when the configuration is
loaded and turns them into the :class:`HelpdeskSettings` the helpdesk code reads.
"""

from __future__ import annotations

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


def settings_for(config: Config) -> HelpdeskSettings:
    """The checked helpdesk settings of ``config``; raises ConfigError naming ``helpdesk.<key>``."""
    raw = config.helpdesk
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
