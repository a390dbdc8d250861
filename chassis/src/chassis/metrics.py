"""Prometheus metrics on a registry per app: RED per route, the bus, gRPC calls.

One process runs one app: the metrics the chassis records outside a request (the bus's
counters, gRPC calls) go to the registry of the app created last, through :func:`bus` and
:func:`rpc`.
"""

from __future__ import annotations

from typing import TypeVar

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
