"""The resilience pipelines' state as Prometheus metrics, read from them when scraped.

A collector rather than gauges updated on every call: the pipelines keep plain counters, and
a scrape (every few seconds) turns them into samples on the app's registry. The reader at
the end turns those samples back into state, for the console's Breakers page and
`souk resilience`: the family names live in this one module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from chassis.resilience.breaker import BreakerState

if TYPE_CHECKING:
    from collections.abc import Iterable

    from prometheus_client.samples import Sample

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


BREAKER_STATES: Final = {0.0: "closed", 1.0: "half-open", 2.0: "open"}
"""The value of ``souk_breaker_state`` → the breaker's state, as people read it."""


@dataclass(slots=True)
class DependencyReading:
    """What one process's pipeline knows of one dependency, as its /metrics tells it."""

    name: str
    breaker: str = "closed"
    refused: float = 0.0
    """calls the open breaker refused"""
    in_flight: float = 0.0
    limit: float = 0.0
    bulkhead_rejected: float = 0.0
    retries: float = 0.0


@dataclass(slots=True)
class LaneReading:
    """One lane of a process's load shedding: requests worked on now, and shed so far."""

    name: str
    working: float = 0.0
    shed: float = 0.0


@dataclass(slots=True)
class ResilienceReading:
    """The ``souk_*`` series of one scrape, gathered sample by sample (`read`)."""

    dependencies: dict[str, DependencyReading] = field(default_factory=dict)
    lanes: dict[str, LaneReading] = field(default_factory=dict)
    retry_budget_refused: float = 0.0

    def read(self, family: str, sample: Sample) -> None:
        """Take one sample of ``family`` (a name `ResilienceCollector` gives); others are
        ignored."""
        labels, value = sample.labels, sample.value
        if sample.name == "souk_retry_budget_refused_total":
            self.retry_budget_refused = value
        elif "dependency" in labels:
            name = labels["dependency"]
            dependency = self.dependencies.setdefault(name, DependencyReading(name))
            # An exposition without TYPE lines names a counter's family with its suffix.
            match family.removesuffix("_total"):
                case "souk_breaker_state":
                    dependency.breaker = BREAKER_STATES.get(value, f"{value:g}")
                case "souk_breaker_rejected":
                    dependency.refused = value
                case "souk_bulkhead_in_flight":
                    dependency.in_flight = value
                case "souk_bulkhead_limit":
                    dependency.limit = value
                case "souk_bulkhead_rejected":
                    dependency.bulkhead_rejected = value
                case "souk_retries":
                    dependency.retries = value
        elif "lane" in labels:
            lane = self.lanes.setdefault(labels["lane"], LaneReading(labels["lane"]))
            if sample.name == "souk_requests_shed_total":
                lane.shed = value
            elif sample.name == "souk_requests_working":
                lane.working = value


def read_resilience(text: str) -> ResilienceReading:
    """The resilience state in a Prometheus text exposition (a process's /metrics)."""
    reading = ResilienceReading()
    for family in text_string_to_metric_families(text):
        if family.name.startswith("souk_"):
            for sample in family.samples:
                reading.read(family.name, sample)
    return reading
