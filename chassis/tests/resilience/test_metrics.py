"""Every app shows its breakers, bulkheads, retries and shed requests on /metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from chassis.resilience import DependencyPolicy

if TYPE_CHECKING:
    from collections.abc import Callable

    from fastapi import FastAPI


def _samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = client.get("/metrics").text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("souk_")
    }


def test_an_open_breaker_and_its_refusals_are_on_the_apps_metrics(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app(APIRouter())
    pipeline = app.state.resilience.pipeline("billing", DependencyPolicy(failure_threshold=1))
    pipeline.breaker.record_failure()

    samples = _samples(TestClient(app))

    billing = (("dependency", "billing"),)
    assert samples[("souk_breaker_state", billing)] == 2
    assert samples[("souk_bulkhead_limit", billing)] == 64
    assert samples[("souk_requests_shed_total", (("lane", "write"),))] == 0
