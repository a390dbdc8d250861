"""The resilience pipelines' state as Prometheus metrics, read from them when scraped.

A collector rather than gauges updated on every call: the pipelines keep plain counters, and
a scrape (every few seconds) turns them into samples on the app's registry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from chassis.resilience.breaker import BreakerState

if TYPE_CHECKING:
    from collections.abc import Iterable

    from chassis.resilience.policy import Resilience
    from chassis.resilience.shedding import Lanes

_STATE_VALUE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class ResilienceCollector(Collector):
    """Breakers, bulkheads, retries and shed requests of one process."""

    def __init__(self, resilience: Resilience, lanes: Lanes | None = None) -> None:
        self._resilience = resilience
        self._lanes = lanes

    def collect(self) -> Iterable[Metric]:
        state = GaugeMetricFamily(
            "souk_breaker_state",
            "Circuit breaker state per dependency: 0 closed, 1 half-open, 2 open.",
            labels=["dependency"],
        )
        rejected = CounterMetricFamily(
            "souk_breaker_rejected",
            "Calls the breaker refused while open.",
            labels=["dependency"],
        )
        in_flight = GaugeMetricFamily(
            "souk_bulkhead_in_flight", "Calls out now per dependency.", labels=["dependency"]
        )
        limit = GaugeMetricFamily(
            "souk_bulkhead_limit", "Calls allowed out at once.", labels=["dependency"]
        )
        full = CounterMetricFamily(
            "souk_bulkhead_rejected", "Calls refused by a full bulkhead.", labels=["dependency"]
        )
        retries = CounterMetricFamily(
            "souk_retries", "Retries made per dependency.", labels=["dependency"]
        )
        for pipeline in self._resilience.pipelines:
            name = [pipeline.dependency]
            state.add_metric(name, _STATE_VALUE[pipeline.breaker.state])
            rejected.add_metric(name, pipeline.breaker.rejected)
            in_flight.add_metric(name, pipeline.bulkhead.in_flight)
            limit.add_metric(name, pipeline.bulkhead.max_concurrent)
            full.add_metric(name, pipeline.bulkhead.rejected)
            retries.add_metric(name, pipeline.retries)
        refused = CounterMetricFamily(
            "souk_retry_budget_refused", "Retries the retry budget did not allow."
        )
        refused.add_metric([], self._resilience.budget.refused)
        shed = CounterMetricFamily(
            "souk_requests_shed", "Requests answered 503 by overload shedding.", labels=["lane"]
        )
        working = GaugeMetricFamily(
            "souk_requests_working", "Requests being worked on per lane.", labels=["lane"]
        )
        for lane in self._lanes or ():
            shed.add_metric([lane.name], lane.shed)
            working.add_metric([lane.name], lane.working)
        yield from (state, rejected, in_flight, limit, full, retries, refused, shed, working)
