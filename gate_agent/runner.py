"""``portgate-agent run``: the agent's application served until SIGTERM/SIGINT, systemd told when it is up."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

from aiohttp import web

from gate_agent.app import create_agent_app
from gate_agent.config import AgentConfig, AgentConfigError, ScannerConfig, frame_size
from gate_agent.enrolment import EnrolmentError
from gate_agent.scanner import CodeSource
from gate_core.systemd import notify_ready

log = logging.getLogger("portgate.agent")

#: Exit statuses of ``portgate-agent run`` besides 0 (stopped) and 2 (configuration error).
EXIT_NOT_ENROLLED = 3
EXIT_SCREEN_PORT = 4


async def run_agent(config: AgentConfig, stop: asyncio.Event | None = None) -> int:
    """Run until SIGTERM/SIGINT (or ``stop``); returns the process exit code.

    Raises :class:`AgentConfigError` for scanners or a ``data_dir`` that cannot be set up,
    before anything starts.
    """
    runner = web.AppRunner(create_agent_app(config, build_sources(config)))
    stop = stop or _stop_on_signals()
    try:
        await runner.setup()
        if not await _serve_screen(runner, config):
            return EXIT_SCREEN_PORT
        notify_ready()
        log.info("kiosk screen on http://%s:%s/ — %d scanner(s)", config.ui_host, config.ui_port, len(config.scanners))
        await stop.wait()
        return 0
    except EnrolmentError as exc:
        log.error("%s", exc)
        return EXIT_NOT_ENROLLED
    finally:
        await runner.cleanup()


async def _serve_screen(runner: web.AppRunner, config: AgentConfig) -> bool:
    """Open the lane screen's port; False (and said) when it cannot be opened."""
    try:
        await web.TCPSite(runner, config.ui_host, config.ui_port).start()
    except OSError as exc:
        log.error("cannot open the kiosk screen on %s:%s: %s", config.ui_host, config.ui_port, exc)
        return False
    return True


def _stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT (where the loop can watch signals)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    return stop


def build_sources(config: AgentConfig) -> list[CodeSource]:
    """The configured scanners, not started yet; a source that cannot be set up is a configuration error.

    A camera's pipeline counts text shaped like a ticket code until the agent's application gives it the
    kiosk's cache to verify against (`gate_agent.app.check_reads_against`).
    """
    sources: list[CodeSource] = []
    for index, scanner in enumerate(config.scanners):
        try:
            sources.append(_source(index, scanner))
        except (ValueError, ImportError, OSError) as exc:
            raise AgentConfigError(f"scanner[{index}]: {exc}") from None
    return sources


def _source(index: int, scanner: ScannerConfig) -> CodeSource:
    name = f"{scanner.type}{index}"
    if scanner.type == "serial":
        from gate_agent.scanner.serial_reader import SerialSource

        return SerialSource(scanner.source, baudrate=scanner.baudrate, suffix=scanner.suffix, name=name)
    from gate_agent.scanner.decoders import get_decoder

    # Cameras look for the QR only: the Code 128 short code is for 1-D handheld readers, and on a
    # photo of a print its bars are too fine to pay for (it would double the decode time).
    decoder = get_decoder(scanner.backend, formats=("qrcode",))
    if scanner.type == "replay":
        from gate_agent.scanner.replay import ReplaySource

        paths = sorted(Path(scanner.source).glob("*")) if Path(scanner.source).is_dir() else [scanner.source]
        return ReplaySource(
            [p for p in paths if Path(p).is_file()],
            decoder,
            interval_s=scanner.interval_s or 4.0,
            loop=scanner.loop,
            name=name,
        )
    from gate_agent.scanner.camera import CameraSource

    source: int | str = int(scanner.source) if scanner.source.isdigit() else scanner.source
    return CameraSource(
        source,
        decoder,
        frame_interval_s=scanner.interval_s,
        loop_file=scanner.loop,
        name=name,
        frame_size=frame_size(scanner.resolution),
    )
