"""RED metrics of the gateway per upstream service and route, beside the chassis's per route."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram

from chassis import ProblemError

if TYPE_CHECKING:
    from gateway.settings import Route


def route_template(route: Route) -> str:
    """The label of a route's requests: ``/api/catalog/{path}``, ``/{path}`` for ``/``."""
    return route.prefix.rstrip("/") + "/{path}"


class UpstreamMetrics:
    """Requests forwarded to each upstream: how many, how they ended, how long they took."""

    def __init__(self) -> None:
        self._requests: Counter | None = None
        self._duration: Histogram | None = None

    def register(self, registry: CollectorRegistry) -> None:
        """Create the metrics on the app's registry (served at /metrics)."""
        self._requests = Counter(
            "gateway_upstream_requests_total",
            "Requests the gateway forwarded, by upstream service, route and status code.",
            ["upstream", "route", "method", "status"],
            registry=registry,
        )
        self._duration = Histogram(
            "gateway_upstream_request_duration_seconds",
            "Time from forwarding a request to the upstream's answer (headers).",
            ["upstream", "route", "method"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )

    @contextlib.contextmanager
    def timed(self, method: str, route: Route) -> Iterator[Sample]:
        """Count and time one forward: its status is the sample's, or a problem's."""
        template = route_template(route)
        started = time.perf_counter()
        sample = Sample()
        try:
            yield sample
        except ProblemError as problem:
            sample.status = problem.status
            raise
        finally:
            if self._requests is not None and self._duration is not None:
                seconds = time.perf_counter() - started
                self._requests.labels(route.upstream, template, method, str(sample.status)).inc()
                self._duration.labels(route.upstream, template, method).observe(seconds)


@dataclass
class Sample:
    """One forward's outcome; 500 until the answer (or the problem) says otherwise."""

    status: int = 500
