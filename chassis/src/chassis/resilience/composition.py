"""How a process gets its resilience: the pipelines on ``app.state.resilience``, overload
shedding in front of the app, and both visible on ``/metrics``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chassis.resilience.metrics import ResilienceCollector
from chassis.resilience.policy import Resilience
from chassis.resilience.shedding import Lanes, LoadShedding

if TYPE_CHECKING:
    from fastapi import FastAPI

    from chassis.metrics import HttpMetrics
    from chassis.settings import ServiceSettings


def install_resilience(app: FastAPI, settings: ServiceSettings) -> None:
    """Give ``app`` its pipelines (``app.state.resilience``) and shed what it cannot take.

    Added last, so shedding runs outside the request context: a shed request costs a 503
    and nothing else.
    """
    resilience = Resilience(overrides=settings.resilience)
    app.state.resilience = resilience
    lanes = Lanes.of(
        reads=settings.max_concurrent_reads,
        writes=settings.max_concurrent_writes,
        calls=settings.max_concurrent_grpc,
    )
    app.state.lanes = lanes  # the gRPC server's interceptor sheds on lanes.calls
    app.add_middleware(LoadShedding, lanes=lanes)
    collector = ResilienceCollector(resilience, lanes)
    app.state.resilience_collector = collector
    metrics: HttpMetrics = app.state.http_metrics
    metrics.registry.register(collector)
