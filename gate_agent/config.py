"""Gate agent settings: a TOML file (``/etc/portgate/agent.toml``) plus ``PORTGATE_AGENT_*`` overrides.

Validated once at start; unknown keys are rejected and every error names the key.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class AgentConfigError(ValueError):
    """A setting is unknown or invalid; the message names it."""


@dataclass(frozen=True)
class ScannerConfig:
    #: "camera" (device index, /dev/videoN, rtsp/http URL, video or image file), "serial" (pyserial URL
    #: or device) or "replay" (image/video files decoded once, for demos and tests).
    type: str
    source: str = ""
    backend: str = "auto"
    baudrate: int = 9600
    suffix: str = "CR"
    loop: bool = False
    interval_s: float = 0.0


@dataclass(frozen=True)
class AgentConfig:
    server_url: str = "http://127.0.0.1:8080"
    data_dir: str = "./agent-data"
    kiosk_name: str = ""
    enrol_code: str = ""
    language: str = "es"
    ui_host: str = "127.0.0.1"
    ui_port: int = 8081
    dedupe_seconds: float = 3.0
    online_timeout_ms: int = 300
    sync_interval_s: float = 30.0
    upload_interval_s: float = 2.0
    #: Uploaded scans are kept in the kiosk's outbox this long, then forgotten (the server has them).
    outbox_keep_days: float = 30.0
    #: How long the lane screen shows a verdict before it asks for the next ticket again.
    verdict_hold_s: float = 6.0
    #: A beep per verdict on the lane screen (one for accepted, another for refused).
    verdict_sound: bool = False
    scanners: tuple[ScannerConfig, ...] = field(default_factory=tuple)

    @property
    def db_path(self) -> Path:
        return Path(self.data_dir) / "agent.db"


_SCANNER_TYPES = ("camera", "serial", "replay")


def _check(key: str, ok: bool, why: str) -> None:
    if not ok:
        raise AgentConfigError(f"{key}: {why}")


def _typed(key: str, value: Any, kind: type) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise AgentConfigError(f"{key}: expected true or false, got {value!r}")
    if kind in (int, float):
        if isinstance(value, bool):
            raise AgentConfigError(f"{key}: expected a number, got {value!r}")
        try:
            return kind(value)
        except (TypeError, ValueError):
            raise AgentConfigError(f"{key}: expected a number, got {value!r}") from None
    if not isinstance(value, str):
        raise AgentConfigError(f"{key}: expected text, got {value!r}")
    return value


def _scanner(index: int, raw: Any) -> ScannerConfig:
    prefix = f"scanner[{index}]"
    if not isinstance(raw, dict):
        raise AgentConfigError(f"{prefix}: expected a [[scanner]] table")
    allowed = {f for f in ScannerConfig.__dataclass_fields__}
    unknown = sorted(set(raw) - allowed)
    _check(
        f"{prefix}.{unknown[0]}" if unknown else prefix,
        not unknown,
        f"unknown setting (allowed: {', '.join(sorted(allowed))})",
    )
    kinds = {
        "type": str,
        "source": str,
        "backend": str,
        "baudrate": int,
        "suffix": str,
        "loop": bool,
        "interval_s": float,
    }
    values = {k: _typed(f"{prefix}.{k}", v, kinds[k]) for k, v in raw.items()}
    _check(f"{prefix}.type", values.get("type") in _SCANNER_TYPES, f"must be one of {', '.join(_SCANNER_TYPES)}")
    _check(f"{prefix}.source", bool(values.get("source")), "required (camera index/path/URL, serial URL or file)")
    _check(f"{prefix}.suffix", values.get("suffix", "CR") in ("CR", "LF", "CRLF"), "must be CR, LF or CRLF")
    _check(
        f"{prefix}.backend",
        values.get("backend", "auto") in ("auto", "zxing", "pyzbar"),
        "must be auto, zxing or pyzbar",
    )
    _check(
        f"{prefix}.baudrate",
        values.get("baudrate", 9600) in (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200),
        "not a standard baud rate",
    )
    return ScannerConfig(**values)


def load_agent_config(
    path: str | os.PathLike[str] | None = None, environ: dict[str, str] | None = None, **overrides: Any
) -> AgentConfig:
    environ = dict(os.environ if environ is None else environ)
    raw: dict[str, Any] = {}
    path = path or environ.get("PORTGATE_AGENT_CONFIG")
    if path:
        try:
            with open(path, "rb") as fh:
                raw = tomllib.load(fh)
        except FileNotFoundError:
            raise AgentConfigError(f"config file {path}: not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise AgentConfigError(f"config file {path}: not valid TOML ({exc})") from None
        except UnicodeDecodeError:
            raise AgentConfigError(f"config file {path}: not UTF-8 text (save it as UTF-8)") from None
        except OSError as exc:
            raise AgentConfigError(f"config file {path}: cannot be read ({exc.strerror or exc})") from None
    for name, value in environ.items():
        if name.startswith("PORTGATE_AGENT_") and name != "PORTGATE_AGENT_CONFIG":
            raw[name[len("PORTGATE_AGENT_") :].lower()] = value
    raw.update({k: v for k, v in overrides.items() if v is not None})
    scanners_raw = raw.pop("scanner", raw.pop("scanners", []))
    fields = {f for f in AgentConfig.__dataclass_fields__} - {"scanners"}
    unknown = sorted(set(raw) - fields)
    _check(
        unknown[0] if unknown else "",
        not unknown,
        f"unknown setting (allowed: {', '.join(sorted(fields))}, [[scanner]])",
    )
    kinds = {
        "ui_port": int,
        "online_timeout_ms": int,
        "dedupe_seconds": float,
        "sync_interval_s": float,
        "upload_interval_s": float,
        "outbox_keep_days": float,
        "verdict_hold_s": float,
        "verdict_sound": bool,
    }
    values = {k: _typed(k, v, kinds.get(k, str)) for k, v in raw.items()}
    if not isinstance(scanners_raw, list):
        raise AgentConfigError("scanner: expected [[scanner]] tables")
    config = AgentConfig(**values, scanners=tuple(_scanner(i, s) for i, s in enumerate(scanners_raw)))
    _check("server_url", config.server_url.startswith(("http://", "https://")), "must start with http:// or https://")
    _check("language", config.language in ("es", "en"), "must be es or en")
    _check("ui_port", 1 <= config.ui_port <= 65535, "must be between 1 and 65535")
    _check("online_timeout_ms", 20 <= config.online_timeout_ms <= 10_000, "must be between 20 and 10000")
    _check("dedupe_seconds", 0 < config.dedupe_seconds <= 600, "must be between 0 and 600 seconds")
    _check("sync_interval_s", 1 <= config.sync_interval_s <= 3600, "must be between 1 and 3600")
    _check("upload_interval_s", 0.2 <= config.upload_interval_s <= 600, "must be between 0.2 and 600")
    _check("outbox_keep_days", 1 <= config.outbox_keep_days <= 3650, "must be between 1 and 3650 days")
    _check("verdict_hold_s", 1 <= config.verdict_hold_s <= 300, "must be between 1 and 300 seconds")
    return config
