"""Prometheus metrics on a registry per app: RED per route, the bus, gRPC calls.

One process runs one app: the metrics the chassis records outside a request (the bus's
counters, gRPC calls) go to the registry of the app created last, through :func:`bus` and
:func:`rpc`. Gauges read from a database (how many orders wait, the oldest one's age) are
set by a :class:`PeriodicRefresh`, with :func:`age_seconds` for "the oldest one".
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from typing import TYPE_CHECKING, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response

from chassis.logs import get_logger

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

_log = get_logger("chassis.metrics")


class HttpMetrics:
    """The request metrics the chassis middleware records for every route."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests handled, by route template and status code.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Time from request start to the end of the response body.",
            ["method", "route"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.in_flight = Gauge(
            "http_requests_in_flight", "HTTP requests being handled now.", registry=registry
        )

    @classmethod
    def create(cls) -> HttpMetrics:
        global _registry  # noqa: PLW0603 - the process's app names its registry once
        registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        _registry = registry
        _families.clear()
        return cls(registry)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.duration.labels(method, route).observe(seconds)


ROUTE_SCOPE_KEY = "souk.route"


def name_route(request: Request, template: str) -> None:
    """Label this request's metrics, span and access line with ``template``, not the route
    that matched it: for catch-all routes such as the gateway's ``/{path:path}``."""
    request.scope[ROUTE_SCOPE_KEY] = template


async def metrics_endpoint(request: Request) -> Response:
    """Serve the app's registry in the Prometheus text format."""
    metrics: HttpMetrics = request.app.state.http_metrics
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


_F = TypeVar("_F", "BusMetrics", "RpcMetrics")
_registry: CollectorRegistry | None = None
_families: dict[type[object], object] = {}


def _current_registry() -> CollectorRegistry:
    global _registry  # noqa: PLW0603 - code running without an app still counts somewhere
    if _registry is None:
        _registry = CollectorRegistry()
    return _registry


class BusMetrics:
    """Messages through the transactional outbox and the consumers of this process."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.published = Counter(
            "messaging_published_messages_total",
            "Messages the outbox relay handed to the broker, by topic.",
            ["topic"],
            registry=registry,
        )
        self.consumed = Counter(
            "messaging_consumed_messages_total",
            "Deliveries whose handling ended (handled or buried), by topic and consumer group.",
            ["topic", "group"],
            registry=registry,
        )
        self.redelivered = Counter(
            "messaging_redeliveries_total",
            "Handler attempts that failed and were tried again.",
            ["topic", "group"],
            registry=registry,
        )
        self.dead_lettered = Counter(
            "messaging_dead_lettered_messages_total",
            "Messages buried as dead letters after their last attempt.",
            ["topic", "group"],
            registry=registry,
        )
        self.handling = Histogram(
            "messaging_handling_duration_seconds",
            "Time from a delivery to the end of its handling, all attempts included.",
            ["topic", "group"],
            registry=registry,
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30),
        )
        self.consumer_lag = Histogram(
            "messaging_consumer_lag_seconds",
            "Time from an event's write to the outbox to the start of a delivery of it.",
            ["topic", "group"],
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 120, 600),
        )
        self.outbox_lag = Gauge(
            "messaging_outbox_lag_seconds",
            "Age of the oldest outbox row not yet published (0 when all are).",
            registry=registry,
        )


class RpcMetrics:
    """gRPC calls served and made by this process (RED per method)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        buckets = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
        self.served = Counter(
            "grpc_server_handled_total",
            "gRPC calls this process served, by method and status code.",
            ["method", "code"],
            registry=registry,
        )
        self.serving = Histogram(
            "grpc_server_handling_seconds",
            "Time to serve a gRPC call.",
            ["method"],
            registry=registry,
            buckets=buckets,
        )
        self.made = Counter(
            "grpc_client_handled_total",
            "gRPC calls this process made, by method and status code.",
            ["method", "code"],
            registry=registry,
        )
        self.making = Histogram(
            "grpc_client_handling_seconds",
            "Time from starting a gRPC call to its status.",
            ["method"],
            registry=registry,
            buckets=buckets,
        )


def bus() -> BusMetrics:
    """The bus metrics of this process's registry."""
    return _family(BusMetrics)


def rpc() -> RpcMetrics:
    """The gRPC metrics of this process's registry."""
    return _family(RpcMetrics)


def _family(kind: type[_F]) -> _F:
    found = _families.get(kind)
    if not isinstance(found, kind):
        found = kind(_current_registry())
        _families[kind] = found
    return found


def age_seconds(oldest: dt.datetime | None, *, now: dt.datetime | None = None) -> float:
    """Seconds since ``oldest``, for a gauge of "the oldest waiting one"; 0 if there is none.

    A time without an offset is read as UTC (SQLite keeps none; the chassis writes UTC), and
    one ahead of ``now`` (another machine's clock) counts as 0, never as a negative age.
    """
    if oldest is None:
        return 0.0
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=dt.UTC)
    return max(0.0, ((now or dt.datetime.now(dt.UTC)) - oldest).total_seconds())


class PeriodicRefresh:
    """Calls ``refresh`` every ``interval`` seconds in the background, from :meth:`start`
    until :meth:`stop`: for gauges read from storage rather than counted as things happen.

    A refresh that fails (a locked database now and then) is logged and tried again at the
    next interval: the gauges keep their last values meanwhile, and the loop goes on.
    """

    def __init__(
        self, refresh: Callable[[], Awaitable[None]], *, interval: float, name: str
    ) -> None:
        self._refresh = refresh
        self._interval = interval
        self._name = name
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Refresh now, then every ``interval`` seconds, until :meth:`stop`."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        """Stop refreshing (a refresh under way is cancelled)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                await self._refresh()
            except Exception:  # noqa: BLE001 - a bad moment is no reason to stop the gauges
                _log.warning("metrics not refreshed", refresh=self._name, exc_info=True)
            await asyncio.sleep(self._interval)
