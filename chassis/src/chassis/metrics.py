"""Prometheus RED metrics (rate, errors, duration) per route, on a registry per app."""

from __future__ import annotations

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
        registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        return cls(registry)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.duration.labels(method, route).observe(seconds)


async def metrics_endpoint(request: Request) -> Response:
    """Serve the app's registry in the Prometheus text format."""
    metrics: HttpMetrics = request.app.state.http_metrics
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
