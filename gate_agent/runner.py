"""Start-up of the gate agent: enrolment, scanners, sync service, kiosk screen, systemd readiness."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import platform
import signal
import socket
import sqlite3
import uuid
from pathlib import Path

import aiohttp
from aiohttp import web

from gate_agent import __version__
from gate_agent.agent import GateAgent
from gate_agent.cache import AgentStore
from gate_agent.config import AgentConfig, AgentConfigError, ScannerConfig
from gate_agent.scanner import CodeSource, Deduplicator, ScannedCode
from gate_agent.sync.client import GateClient, ServerError, Unreachable
from gate_agent.sync.page import BadSyncData, checked_itineraries
from gate_agent.sync.service import SyncService

log = logging.getLogger("portgate.agent")


class EnrolmentError(Exception):
    """Enrolment could not be completed; the message says why."""


def machine_fingerprint() -> str:
    """A stable id of this box (machine-id when there is one), hashed so it reveals nothing."""
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            raw = Path(path).read_text().strip()
            if raw:
                break
        except OSError:
            continue
    else:
        raw = f"{socket.gethostname()}-{uuid.getnode()}"
    return hashlib.sha256(f"portgate:{raw}:{platform.machine()}".encode()).hexdigest()[:32]


async def enrol(config: AgentConfig, store: AgentStore, enrol_code: str) -> dict:
    """Exchange a one-time enrolment code for this kiosk's token and remember it."""
    async with aiohttp.ClientSession() as session:
        client = GateClient(config.server_url, None, session)
        try:
            answer = await client.enrol(enrol_code.strip(), machine_fingerprint(), __version__)
        except Unreachable as exc:
            raise EnrolmentError(f"the server at {config.server_url} did not answer: {exc}") from None
        except ServerError as exc:
            raise EnrolmentError(f"the server refused the enrolment ({exc.code}): {exc}") from None
    token = answer.get("token")
    try:
        allowed = checked_itineraries(answer.get("allowed_itineraries"))
    except BadSyncData as exc:
        raise EnrolmentError(f"the server's answer cannot be used: {exc}") from None
    if not isinstance(token, str) or not token:
        raise EnrolmentError("the server's answer has no access token: is server_url the Portgate server?")
    store.set_meta(
        {
            "token": token,
            "kiosk_id": answer.get("kiosk_id", ""),
            "kiosk_name": answer.get("name", answer.get("kiosk_name", "")),
            "revoked": "0",
            "allowed_itineraries": "" if not allowed else json.dumps(allowed),
            "server_url": config.server_url,
        }
    )
    return answer


def build_sources(config: AgentConfig) -> list[CodeSource]:
    """The configured scanners, not started yet; a source that cannot be set up is a configuration error."""
    sources: list[CodeSource] = []
    for index, scanner in enumerate(config.scanners):
        try:
            sources.append(_source(index, scanner))
        except (ValueError, ImportError, OSError) as exc:
            raise AgentConfigError(f"scanner[{index}]: {exc}") from None
    return sources


def open_store(config: AgentConfig) -> AgentStore:
    """The kiosk's database in ``data_dir``; one that cannot be opened is a configuration error."""
    try:
        return AgentStore(config.db_path)
    except (OSError, sqlite3.Error) as exc:
        raise AgentConfigError(f"data_dir: cannot open the kiosk database {config.db_path}: {exc}") from None


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
    return CameraSource(source, decoder, frame_interval_s=scanner.interval_s, loop_file=scanner.loop, name=name)


async def run_agent(config: AgentConfig, stop: asyncio.Event | None = None) -> int:
    """Run until SIGTERM/SIGINT (or ``stop``); returns the process exit code.

    Raises :class:`AgentConfigError` for scanners or a ``data_dir`` that cannot be set up,
    before anything starts.
    """
    sources = build_sources(config)
    store = open_store(config)
    if config.enrol_code and not store.get_meta("token"):
        try:
            answer = await enrol(config, store, config.enrol_code)
            log.info("enrolled as kiosk %s", answer.get("name", answer.get("kiosk_id")))
        except EnrolmentError as exc:
            log.error("%s", exc)
            store.close()
            return 3
    token = store.get_meta("token")
    if not token:
        log.error("this kiosk is not enrolled: run `portgate-agent enrol --code CODE` or set enrol_code")
        store.close()
        return 3
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    async with aiohttp.ClientSession() as session:
        agent = GateAgent(config, store, GateClient(config.server_url, token, session))
        sync = SyncService(agent)
        queue: asyncio.Queue[ScannedCode] = asyncio.Queue(maxsize=100)
        dedupe = Deduplicator(config.dedupe_seconds)

        def on_code(scanned: ScannedCode) -> None:  # called from scanner threads
            if dedupe.accept(scanned.code, scanned.read_at_monotonic):
                loop.call_soon_threadsafe(_put_latest, queue, scanned)

        runner = web.AppRunner(_kiosk_app(agent))
        await runner.setup()
        site = web.TCPSite(runner, config.ui_host, config.ui_port)
        try:
            await site.start()
        except OSError as exc:
            log.error("cannot open the kiosk screen on %s:%s: %s", config.ui_host, config.ui_port, exc)
            await runner.cleanup()
            store.close()
            return 4
        await sync.pull()
        await sync.upload(force=True)
        sync.start()
        for source in sources:
            source.start(on_code)
        consumer = loop.create_task(_consume(agent, queue))
        from gate_core.systemd import notify_ready

        notify_ready()
        log.info("kiosk screen on http://%s:%s/ — %d scanner(s)", config.ui_host, config.ui_port, len(sources))
        await stop.wait()
        for source in sources:
            await loop.run_in_executor(None, source.stop)
        consumer.cancel()
        await sync.stop()
        await runner.cleanup()
    agent.writer.shutdown(wait=True)
    store.close()
    return 0


def _put_latest(queue: asyncio.Queue[ScannedCode], scanned: ScannedCode) -> None:
    if queue.full():  # a burst the gate cannot serve: the oldest waiting read is the least useful
        queue.get_nowait()
    queue.put_nowait(scanned)


async def _consume(agent: GateAgent, queue: asyncio.Queue[ScannedCode]) -> None:
    while True:
        scanned = await queue.get()
        try:
            await agent.handle_code(scanned.code, scanned.source)
        except Exception:
            log.exception("could not decide a scan from %s", scanned.source)


def _kiosk_app(agent: GateAgent) -> web.Application:
    from kiosk_ui.server import create_kiosk_app

    return create_kiosk_app(agent)
