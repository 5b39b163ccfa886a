"""The kiosk's own Prometheus metrics, served on 127.0.0.1 only (``metrics_port``; 0, the default, serves none).

Frames and decodes are counted by the camera sources themselves (their ``stats()``); rates are Prometheus'
business. Reads, and the time from a read to the verdict on the lane screen, are counted as the agent
handles them; the outbox and the link to the server are read from the agent's state when scraped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gate_agent.cache import AgentStore
from gate_agent.scanner import CodeSource, ScannedCode
from gate_agent.status import AgentStatus

log = logging.getLogger(__name__)

#: Seconds from a read to its verdict: offline in a few ms, online within ``online_timeout_ms`` (300 by default).
VERDICT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0)
#: A camera source's ``stats()`` keys shown as counters, and what each says.
SOURCE_COUNTERS = {
    "frames_captured": "Frames the camera delivered",
    "frames_decoded": "Frames the decoder looked at (the others were replaced by a newer one first)",
    "frames_dropped": "Frames replaced by a newer one before the decoder got to them",
    "codes_found": "Codes the decoder found in frames (before the same code read again is dropped)",
    "decode_errors": "Frames the decoder failed on",
    "reconnects": "Times the camera was reopened after it failed or stopped delivering frames",
}
#: The bind address: the figures are the kiosk's, for a collector on the kiosk (or a tunnel to it).
METRICS_HOST = "127.0.0.1"


class _StateCollector(Collector):
    """What is read when scraped: the sources' own counters, the outbox and the link to the server."""

    def __init__(self, sources: Sequence[CodeSource], state: Callable[[], dict[str, int]]) -> None:
        self._sources = sources
        self._state = state

    def collect(self) -> Iterator[Metric]:
        yield from _source_counters(self._sources)
        state = self._state()
        for name, documentation in (
            ("online", "1 while the server answers the kiosk, 0 while it decides on its own"),
            ("revoked", "1 once the server has revoked this kiosk"),
            ("outbox_pending", "Scans waiting in the outbox to be uploaded"),
            ("outbox_rejected", "Scans the server refused to record (see portgate-agent outbox)"),
            ("tickets", "Tickets in the kiosk's cache"),
        ):
            gauge = GaugeMetricFamily(f"portgate_agent_{name}", documentation)
            gauge.add_metric([], state[name])
            yield gauge


def _source_counters(sources: Sequence[CodeSource]) -> Iterator[Metric]:
    """Each source's ``stats()`` counters (camera sources have them; a serial scanner has none)."""
    stats = []
    for index, source in enumerate(sources):
        read_stats = getattr(source, "stats", None)
        if callable(read_stats):
            stats.append((_source_name(source, index), read_stats()))
    for key, documentation in SOURCE_COUNTERS.items():
        family = CounterMetricFamily(f"portgate_agent_{key}", documentation, labels=["source"])
        for name, figures in stats:
            if key in figures:
                family.add_metric([name], figures[key])
        yield family


def _source_name(source: CodeSource, index: int) -> str:
    return str(getattr(source, "name", "") or f"scanner{index + 1}")


class AgentMetrics:
    """The kiosk's registry (its own, never the library's global one) and the figures the agent moves."""

    def __init__(self, sources: Sequence[CodeSource], state: Callable[[], dict[str, int]]) -> None:
        self.registry = CollectorRegistry()
        self.reads = Counter(
            "portgate_agent_reads", "Codes read by each scanner, repeats of one code included", ["source"],
            registry=self.registry,
        )  # fmt: skip
        self.advice = Counter(
            "portgate_agent_advice", "Advice the lane screen got for a ticket a camera saw but could not read "
            "(again every 2 s while it lasts): many at one lane say its lamp or camera needs moving",
            ["source", "advice"], registry=self.registry,
        )  # fmt: skip
        self.verdict_seconds = Histogram(
            "portgate_agent_verdict_seconds", "From a code's read to its verdict on the lane screen",
            ["mode"], buckets=VERDICT_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.registry.register(_StateCollector(sources, state))

    def count_read(self, scanned: ScannedCode) -> None:
        """A scanner read a code (called from its thread; counters are thread-safe)."""
        self.reads.labels(scanned.source).inc()

    def count_advice(self, advice: str, source: str) -> None:
        """A camera advised the driver (called from its thread)."""
        self.advice.labels(source, advice).inc()

    def observe_verdict(self, scanned: ScannedCode, shown: dict[str, Any]) -> None:
        """The verdict for ``scanned`` is on the screen: ``online`` (the server's) or ``offline`` (the kiosk's)."""
        self.verdict_seconds.labels(str(shown.get("mode", "offline"))).observe(
            time.monotonic() - scanned.read_at_monotonic
        )

    def page(self) -> bytes:
        return generate_latest(self.registry)


AGENT_METRICS = web.AppKey("agent_metrics", AgentMetrics)


def kiosk_state(status: AgentStatus, store: AgentStore) -> dict[str, int]:
    """The gauges' values now (two counts on the kiosk's database, as the lane screen's status reads them)."""
    return {
        "online": int(status.online),
        "revoked": int(status.revoked),
        "outbox_pending": store.pending_count(),
        "outbox_rejected": store.rejected_count(),
        "tickets": status.tickets,
    }


def metrics_app(metrics: AgentMetrics) -> web.Application:
    """The small app that serves ``GET /metrics`` (nothing else) on the metrics port."""

    async def metrics_page(_request: web.Request) -> web.Response:
        response = web.Response(body=metrics.page())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    app = web.Application()
    app.router.add_get("/metrics", metrics_page)
    return app


@asynccontextmanager
async def serving_metrics(metrics: AgentMetrics, port: int) -> AsyncIterator[None]:
    """Serve ``metrics`` on 127.0.0.1:``port`` while the agent runs; port 0 serves nothing."""
    if not port:
        yield
        return
    runner = web.AppRunner(metrics_app(metrics), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, METRICS_HOST, port).start()
        log.info("metrics on http://%s:%s/metrics", METRICS_HOST, port)
        yield
    finally:
        await runner.cleanup()
