"""Prometheus metrics: ``/metrics`` in the text format, off unless ``[metrics] enabled``.

Each app has its own :class:`~prometheus_client.CollectorRegistry` (never the library's global one), so
tests that run several apps in one process, and the apps themselves, never share counts. Counters move
where things happen (:func:`observe_redeem`, :func:`observe_sync_pull`, the response middleware); what is a
state rather than an event (kiosks connected, their sync lag and pending uploads, the mail outbox, the
database pool) is read when Prometheus scrapes, so nothing runs for it between scrapes.

Each node counts what it served: Prometheus scrapes every node and sums them. Kiosks connected are this
node's live sockets; sync lag, pending uploads and the outbox come from the database, the same on every node.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gate_core.decision import Verdict
from server.config import MetricsConfig, in_networks, parse_address
from server.gate.kiosks import KIOSKS
from server.gate.live import LIVE
from server.gate.sync import current_seq
from server.i18n import Msg
from server.security import same_secret
from server.web import CONFIG, DB, json_error

#: Redeem latency buckets (seconds): the kiosk waits ``online_timeout_ms`` (300 ms by default) for a verdict.
REDEEM_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.15, 0.3, 0.6, 1.2, 2.5, 5.0)
#: Methods counted by name; any other (clients may send anything) is counted as "other".
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_ACTIVE_KIOSKS_SQL = "SELECT id, name, last_sync_seq, pending_uploads FROM kiosks WHERE status = 'active'"
_OUTBOX_SQL = "SELECT status, COUNT(*) FROM mail_outbox GROUP BY status"


@dataclass(frozen=True)
class KioskFigures:
    name: str
    connected: bool
    #: Changes made since the last sync page the kiosk received (0: it has them all).
    sync_lag: int
    #: Scans waiting in the kiosk's outbox, as it last reported (None: it has not said).
    pending_uploads: int | None


@dataclass(frozen=True)
class Snapshot:
    """What the state gauges show, read once per scrape."""

    kiosks: tuple[KioskFigures, ...] = ()
    outbox: Mapping[str, int] = field(default_factory=dict)
    #: The engine's ``pool_stats()`` (``size``, ``busy``, ``waiting``), or None when it has none.
    pool: Mapping[str, int] | None = None


class _StateCollector(Collector):
    """Gauges from the latest :class:`Snapshot`: a kiosk revoked since drops out instead of lingering."""

    def __init__(self) -> None:
        self.snapshot = Snapshot()

    def collect(self) -> Iterator[Metric]:
        kiosks = self.snapshot.kiosks
        connected = sum(1 for kiosk in kiosks if kiosk.connected)
        yield _gauge("portgate_kiosks_connected", "Kiosks with a live channel open to this node", [((), connected)])
        yield _gauge(
            "portgate_kiosk_sync_lag",
            "Changes to tickets the kiosk has not pulled yet",
            [((k.name,), k.sync_lag) for k in kiosks],
            ["kiosk"],
        )
        reported = [((k.name,), k.pending_uploads) for k in kiosks if k.pending_uploads is not None]
        yield _gauge("portgate_kiosk_pending_uploads", "Scans waiting in the kiosk's outbox", reported, ["kiosk"])
        outbox = [((status,), self.snapshot.outbox.get(status, 0)) for status in ("queued", "failed")]
        yield _gauge("portgate_mail_outbox_messages", "Messages waiting in the mail outbox", outbox, ["status"])
        pool = self.snapshot.pool
        if pool is not None:
            for key in ("size", "busy", "waiting"):
                yield _gauge(f"portgate_db_pool_{key}", _POOL_HELP[key], [((), pool.get(key, 0))])


_POOL_HELP = {
    "size": "Database connections (SQLite: reader threads) this node may use",
    "busy": "Of those, the ones running a query now",
    "waiting": "Queries waiting for a free connection",
}


def _gauge(
    name: str, documentation: str, samples: Iterable[tuple[tuple[str, ...], float]], labels: Sequence[str] = ()
) -> Metric:
    family = GaugeMetricFamily(name, documentation, labels=list(labels))
    for values, value in samples:
        family.add_metric(list(values), value)
    return family


class ServerMetrics:
    """One app's registry and the counters its handlers move."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.redeems = Counter(
            "portgate_redeems", "Online redeems answered, by outcome and reason code", ["outcome", "reason"],
            registry=self.registry,
        )  # fmt: skip
        self.redeem_seconds = Histogram(
            "portgate_redeem_duration_seconds", "Time to answer an online redeem", buckets=REDEEM_BUCKETS,
            registry=self.registry,
        )  # fmt: skip
        self.sync_pulls = Counter("portgate_sync_pulls", "Sync pages sent to kiosks", ["kind"], registry=self.registry)
        self.sync_bytes = Counter(
            "portgate_sync_bytes", "Bytes of sync pages sent (as sent: gzipped when asked)", ["kind"],
            registry=self.registry,
        )  # fmt: skip
        self.http_responses = Counter(
            "portgate_http_responses", "HTTP responses by route pattern, method and status",
            ["route", "method", "status"], registry=self.registry,
        )  # fmt: skip
        self.state = _StateCollector()
        self.registry.register(self.state)


METRICS = web.AppKey("metrics", ServerMetrics)
REQUEST_STARTED = web.RequestKey("metrics_request_started", float)


# --- events ------------------------------------------------------------------------------------------


def observe_redeem(request: web.Request, verdict: Verdict) -> None:
    """Count an answered online redeem and the time since its request arrived."""
    metrics = request.app.get(METRICS)
    if metrics is not None:
        metrics.redeems.labels("accepted" if verdict.accepted else "refused", verdict.reason.value).inc()
        metrics.redeem_seconds.observe(time.perf_counter() - request[REQUEST_STARTED])


def observe_sync_pull(request: web.Request, full: bool, response: web.Response) -> None:
    """Count a sync page (``full`` from cursor 0, else a delta) and its bytes as sent."""
    metrics = request.app.get(METRICS)
    if metrics is not None:
        kind = "full" if full else "delta"
        metrics.sync_pulls.labels(kind).inc()
        metrics.sync_bytes.labels(kind).inc(response.content_length or 0)


def _route(request: web.Request) -> str:
    """The route's pattern (``/tickets/{id}``), never the raw path: one series per route, whatever is asked."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def count_responses(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Outermost middleware: every answer by route and status, errors and aiohttp's own 404/405 included."""
    request[REQUEST_STARTED] = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:  # redirects, and errors the error middleware leaves to aiohttp
        status = exc.status
        raise
    finally:
        method = request.method if request.method in _METHODS else "other"
        request.app[METRICS].http_responses.labels(_route(request), method, str(status)).inc()


# --- the state gauges --------------------------------------------------------------------------------


def pool_stats(db: Any) -> Mapping[str, int] | None:
    """The engine's connection-pool figures, when it offers them.

    An engine may define ``pool_stats() -> {"size": n, "busy": n, "waiting": n}`` (SQLite: reader threads
    and the reads queued for them). The PostgreSQL engine's psycopg pool is read directly (its
    ``get_stats()``: ``pool_max`` connections at most, ``pool_size - pool_available`` lent out,
    ``requests_waiting``). Read through ``getattr`` so an engine with neither still serves every other metric.
    """
    stats = getattr(db, "pool_stats", None)
    if callable(stats):
        return stats()
    get_stats = getattr(getattr(db, "pool", None), "get_stats", None)
    if not callable(get_stats):
        return None
    pool = get_stats()
    lent = pool.get("pool_size", 0) - pool.get("pool_available", 0)
    return {"size": pool.get("pool_max", 0), "busy": lent, "waiting": pool.get("requests_waiting", 0)}


def _kiosk_rows(db: Any) -> tuple[int, list[Any]]:
    return current_seq(db), list(db.execute(_ACTIVE_KIOSKS_SQL).fetchall())


async def read_snapshot(app: web.Application) -> Snapshot:
    """The state gauges' values now: one read of the kiosks and the outbox, fresher cached figures on top."""
    db = app[DB]
    newest, rows = await db.read(_kiosk_rows)
    outbox = dict(await db.read(lambda conn: conn.execute(_OUTBOX_SQL).fetchall()))
    cached = app[KIOSKS].live_state()  # cursors and outbox sizes not saved yet
    connected = app[LIVE].connected_kiosks
    kiosks = []
    for kiosk_id, name, saved_seq, saved_pending in rows:
        state = cached.get(kiosk_id)
        synced = max(saved_seq or 0, (state.synced_to if state else None) or 0)
        pending = state.pending_uploads if state and state.pending_uploads is not None else saved_pending
        kiosks.append(KioskFigures(name, kiosk_id in connected, max(0, newest - synced), pending))
    return Snapshot(tuple(kiosks), outbox, pool_stats(db))


# --- the endpoint ------------------------------------------------------------------------------------


def _refusal(request: web.Request, settings: MetricsConfig) -> web.Response | None:
    """403 for an address outside ``allow``, 401 without the right token; None lets the scrape through."""
    if settings.networks and not in_networks(parse_address(request.remote), settings.networks):
        return json_error(request, 403, "forbidden", Msg("Metrics are not served to this address."))
    if settings.token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not same_secret(settings.token, given.strip()):
            response = json_error(request, 401, "unauthorized", Msg("Metrics need the scrape token."))
            response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    return None


async def metrics_page(request: web.Request) -> web.Response:
    """``GET /metrics``: the Prometheus text format, to allowed addresses with the token."""
    refused = _refusal(request, request.app[CONFIG].metrics)
    if refused is not None:
        return refused
    metrics = request.app[METRICS]
    metrics.state.snapshot = await read_snapshot(request.app)
    response = web.Response(body=generate_latest(metrics.registry))
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    response.headers["Cache-Control"] = "no-store"
    return response


def setup(app: web.Application) -> None:
    """When ``[metrics] enabled``: the registry, the response-counting middleware and ``GET /metrics``."""
    if not app[CONFIG].metrics.enabled:
        return  # no middleware, no route: /metrics is a 404 like any unknown address
    app[METRICS] = ServerMetrics()
    app.middlewares.insert(0, count_responses)  # outermost: it sees what the error middleware answers
    app.router.add_get("/metrics", metrics_page, name="metrics")
