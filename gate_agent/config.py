"""Gate agent settings: a TOML file (``/etc/portgate/agent.toml``) plus ``PORTGATE_AGENT_*`` overrides.

The schema on :mod:`gate_core.settings`' strict base, as the server's: validated once at start,
unknown keys are rejected and every error names the key (``scanner[1].baudrate``) and why.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from gate_core.settings import (
    KEY,
    Between,
    Folder,
    HttpUrl,
    Language,
    NotEmpty,
    OneOf,
    Port,
    Settings,
    SettingsError,
    load_settings,
)


class AgentConfigError(SettingsError):
    """A setting is unknown or invalid; the message names it."""


_BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
#: The frame size asked of a local camera: enough for the printed code at arm's length, and what the
#: decoding pipeline keeps within 1/15 s a frame on one core (docs/performance.md). "camera" asks nothing.
DEFAULT_RESOLUTION = "1280x720"
_SIDES = (160, 4096)  # px: a frame side outside this is a typo, not a camera


def frame_size(value: str) -> tuple[int, int] | None:
    """A ``scanner.resolution`` as (width, height), or None for "camera" (the camera's own default); a
    ValueError saying why when it is neither."""
    text = value.strip().lower()
    if text == "camera":
        return None
    width, x, height = text.partition("x")
    low, high = _SIDES
    if x and width.isdecimal() and height.isdecimal() and all(low <= int(side) <= high for side in (width, height)):
        return int(width), int(height)
    sides = f"each {low} to {high}"
    raise ValueError(f"must be WIDTHxHEIGHT in pixels, {sides} (such as 1280x720), or camera, got {value!r}")


def _refused_frame_size(value: str) -> str | None:
    """The settings rule for ``scanner.resolution``: why `frame_size` refuses it, or None."""
    try:
        frame_size(value)
    except ValueError as refused:
        return str(refused)
    return None


@dataclass(frozen=True)
class ScannerConfig(Settings):
    """A ``[[scanner]]`` table: one code reader."""

    #: "camera" (device index, /dev/videoN, rtsp/http URL, video or image file), "serial" (pyserial URL
    #: or device) or "replay" (image/video files decoded once, for demos and tests).
    type: Annotated[str, OneOf(("camera", "serial", "replay"))]
    source: Annotated[str, NotEmpty("required (camera index/path/URL, serial URL or file)")] = ""
    backend: Annotated[str, OneOf(("auto", "zxing", "pyzbar"))] = "auto"
    baudrate: Annotated[int, OneOf(_BAUD_RATES)] = 9600
    suffix: Annotated[str, OneOf(("CR", "LF", "CRLF"))] = "CR"
    loop: bool = False
    interval_s: float = 0.0
    #: The frame size asked of a camera on this box (an index or /dev/videoN; streams and files keep theirs).
    resolution: Annotated[str, _refused_frame_size] = DEFAULT_RESOLUTION


@dataclass(frozen=True)
class AgentConfig(Settings):
    server_url: Annotated[str, HttpUrl()] = "http://127.0.0.1:8080"
    data_dir: Folder = "./agent-data"
    kiosk_name: str = ""
    enrol_code: str = ""
    language: Language = "es"
    ui_host: str = "127.0.0.1"
    ui_port: Port = 8081
    #: The same code read again within this window is one scan; 0 would count every frame.
    dedupe_seconds: Annotated[float, Between(0, 600, "seconds", above_low=True)] = 3.0
    online_timeout_ms: Annotated[int, Between(20, 10_000)] = 300
    sync_interval_s: Annotated[float, Between(1, 3600)] = 30.0
    upload_interval_s: Annotated[float, Between(0.2, 600)] = 2.0
    #: Uploaded scans are kept in the kiosk's outbox this long, then forgotten (the server has them).
    outbox_keep_days: Annotated[float, Between(1, 3650, "days")] = 30.0
    #: How long the lane screen shows a verdict before it asks for the next ticket again.
    verdict_hold_s: Annotated[float, Between(1, 300, "seconds")] = 6.0
    #: A beep per verdict on the lane screen (one for accepted, another for refused).
    verdict_sound: bool = False
    #: Port of the kiosk's Prometheus metrics on 127.0.0.1 (``/metrics``); 0 serves none.
    metrics_port: Annotated[int, Between(0, 65535)] = 0
    #: ``[[scanner]]`` tables, in the file only.
    scanners: tuple[ScannerConfig, ...] = field(default=(), metadata={KEY: "scanner"})

    @property
    def db_path(self) -> Path:
        return Path(self.data_dir) / "agent.db"


def load_agent_config(
    path: str | os.PathLike[str] | None = None, environ: dict[str, str] | None = None, **overrides: Any
) -> AgentConfig:
    """Read the TOML file (if any), apply ``PORTGATE_AGENT_*`` variables, then ``overrides``; validate."""
    environ = dict(os.environ if environ is None else environ)
    return load_settings(AgentConfig, path, environ, overrides, env_prefix="PORTGATE_AGENT_", error=AgentConfigError)
