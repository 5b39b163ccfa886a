"""The gate agent as an aiohttp application: one factory, and everything with a lifetime in it.

As aiohttp's ``examples/background_tasks.py`` does it, each resource (the kiosk's database and
its writer thread, the HTTP session to the server, the sync jobs and live channel, the scanners)
is opened by a cleanup context that :func:`create_agent_app` registers, and closed by the same
context, in reverse order, whether the agent stops or fails half-way through starting. The
application serves the lane screen (:mod:`kiosk_ui.server`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp import web

from gate_agent.agent import GateAgent
from gate_agent.cache import AgentStore, StoreWriter
from gate_agent.config import AgentConfig, AgentConfigError
from gate_agent.enrolment import ensure_enrolled
from gate_agent.metrics import AGENT_METRICS, AgentMetrics, kiosk_state, serving_metrics
from gate_agent.scanner import CodeSource, Deduplicator, ScannedCode
from gate_agent.scanner.verify import UNVERIFIED_AFTER_S, signed_code_verifier
from gate_agent.status import AgentStatus, ServerClock
from gate_agent.sync.client import GateClient
from gate_agent.sync.service import SyncService
from kiosk_ui.server import LANE_AGENT, setup_lane_screen

log = logging.getLogger("portgate.agent")

CONFIG = web.AppKey("config", AgentConfig)
SOURCES = web.AppKey[Sequence[CodeSource]]("sources")
STORE = web.AppKey("store", AgentStore)
WRITER = web.AppKey("writer", StoreWriter)
STATUS = web.AppKey("status", AgentStatus)
CLIENT = web.AppKey("client", GateClient)
AGENT = web.AppKey("agent", GateAgent)
SYNC = web.AppKey("sync", SyncService)
#: Set once the first catch-up with the server is over (done or failed): the scanners start then.
CAUGHT_UP = web.AppKey("caught_up", asyncio.Event)
#: Reads waiting to be decided; when a burst fills it, the oldest read goes.
SCAN_QUEUE_SIZE = 100


def check_reads_against(store: AgentStore, sources: Sequence[CodeSource]) -> None:
    """The sources' camera pipelines count a read only when it verifies against the kiosk's cache (a code signed
    with one of its keys, or a short code it knows), and decide a code that does not (forged, or signed with a
    key not synced yet) once no verified one has come for `UNVERIFIED_AFTER_S`. Keys a sync brings count at
    once. Single-library decoders (and serial readers) take no check."""
    verify = signed_code_verifier(lambda: store.verify_keys, lambda short: store.lookup_short_code(short) is not None)
    for source in sources:
        decoder: Any = getattr(source, "decoder", None)
        if hasattr(decoder, "unverified_after_s"):  # the frame pipeline (not imported here: it brings OpenCV)
            decoder.verify, decoder.unverified_after_s = verify, UNVERIFIED_AFTER_S


def create_agent_app(
    config: AgentConfig, sources: Sequence[CodeSource] = (), *, keep_in_sync: bool = True
) -> web.Application:
    """The agent's application; ``keep_in_sync=False`` leaves pulling and uploading to the caller (tests)."""
    app = web.Application()
    app[CONFIG] = config
    app[SOURCES] = sources
    app[CAUGHT_UP] = asyncio.Event()
    app.cleanup_ctx.extend((kiosk_store, server_client, gate_agent, agent_metrics))
    setup_lane_screen(app)
    if keep_in_sync:
        app.cleanup_ctx.append(sync_jobs)
    app.cleanup_ctx.append(scanning)
    return app


def open_store(config: AgentConfig) -> AgentStore:
    """The kiosk's database in ``data_dir``; one that cannot be opened is a configuration error."""
    try:
        return AgentStore(config.db_path)
    except (OSError, sqlite3.Error) as exc:
        raise AgentConfigError(f"data_dir: cannot open the kiosk database {config.db_path}: {exc}") from None


@asynccontextmanager
async def kiosk_store(app: web.Application) -> AsyncIterator[None]:
    """The kiosk's database and the one thread that writes it; a kiosk that is not enrolled goes no further."""
    store = open_store(app[CONFIG])
    writer = StoreWriter()
    try:
        await ensure_enrolled(app[CONFIG], store)
        app[STORE], app[WRITER], app[STATUS] = store, writer, AgentStatus.from_store(store)
        check_reads_against(store, app[SOURCES])
        yield
    finally:
        writer.shutdown()
        store.close()


@asynccontextmanager
async def server_client(app: web.Application) -> AsyncIterator[None]:
    """The HTTP session to the server; every request tells it how the kiosk is (its status's headers)."""
    async with aiohttp.ClientSession() as session:
        token = app[STORE].get_meta("token")
        app[CLIENT] = GateClient(app[CONFIG].server_url, token, session, report_headers=app[STATUS].report_headers)
        yield


@asynccontextmanager
async def gate_agent(app: web.Application) -> AsyncIterator[None]:
    """The agent that decides the scans, and the service that keeps its cache in step with the server."""
    config, store, client, status, writer = app[CONFIG], app[STORE], app[CLIENT], app[STATUS], app[WRITER]
    clock = ServerClock()
    agent = GateAgent(config, store, client, status, writer, clock)
    app[AGENT] = app[LANE_AGENT] = agent
    app[SYNC] = SyncService(store, client, status, agent.broadcast_status, writer=writer, clock=clock, config=config)
    yield


@asynccontextmanager
async def agent_metrics(app: web.Application) -> AsyncIterator[None]:
    """The kiosk's metrics, counted always, served on 127.0.0.1 when ``metrics_port`` is set."""
    app[AGENT_METRICS] = metrics = AgentMetrics(app[SOURCES], lambda: kiosk_state(app[STATUS], app[STORE]))
    async with serving_metrics(metrics, app[CONFIG].metrics_port):
        yield


@asynccontextmanager
async def sync_jobs(app: web.Application) -> AsyncIterator[None]:
    """Catch up with the server in the background (the screen is served meanwhile), then keep in step."""
    sync, caught_up = app[SYNC], app[CAUGHT_UP]

    async def catch_up_then_schedule() -> None:
        try:
            await sync.start()
        finally:
            caught_up.set()

    starting = asyncio.get_running_loop().create_task(catch_up_then_schedule())
    yield
    await _cancelled(starting)
    await sync.stop()


@asynccontextmanager
async def scanning(app: web.Application) -> AsyncIterator[None]:
    """The scanners, started once the kiosk has caught up, and the loop that decides what they read."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[ScannedCode] = asyncio.Queue(maxsize=SCAN_QUEUE_SIZE)
    dedupe = Deduplicator(app[CONFIG].dedupe_seconds)
    metrics = app[AGENT_METRICS]

    def on_code(scanned: ScannedCode) -> None:  # called from scanner threads
        metrics.count_read(scanned)
        if dedupe.accept(scanned.code, scanned.read_at_monotonic):
            loop.call_soon_threadsafe(_put_latest, queue, scanned)

    def on_advice(advice: str, source: str) -> None:  # called from camera threads
        metrics.count_advice(advice, source)
        if loop.is_closed():  # a camera thread that outlived the shutdown
            return
        sent = asyncio.run_coroutine_threadsafe(app[AGENT].advise(advice, source), loop)
        sent.add_done_callback(_log_failure)

    started: list[CodeSource] = []

    async def start_then_decide() -> None:
        await app[CAUGHT_UP].wait()
        for source in app[SOURCES]:
            if hasattr(source, "on_advice"):  # a camera: what to tell a driver whose ticket it cannot read
                source.on_advice = on_advice
            source.start(on_code)
            started.append(source)
        await _decide_each(app[AGENT], queue, metrics)

    deciding = loop.create_task(start_then_decide())
    yield
    for source in started:
        await loop.run_in_executor(None, source.stop)
    await _cancelled(deciding)


def _log_failure(done: concurrent.futures.Future[None]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.error("could not show the camera's advice on the screens", exc_info=done.exception())


def _put_latest(queue: asyncio.Queue[ScannedCode], scanned: ScannedCode) -> None:
    if queue.full():  # a burst the gate cannot serve: the oldest waiting read is the least useful
        queue.get_nowait()
    queue.put_nowait(scanned)


async def _decide_each(agent: GateAgent, queue: asyncio.Queue[ScannedCode], metrics: AgentMetrics) -> None:
    while True:
        scanned = await queue.get()
        try:
            shown = await agent.handle_code(scanned.code, scanned.source)
        except Exception:
            log.exception("could not decide a scan from %s", scanned.source)
        else:
            metrics.observe_verdict(scanned, shown)


async def _cancelled(task: asyncio.Task[None]) -> None:
    """Cancel a background task and wait until it has ended."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
