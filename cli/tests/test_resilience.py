"""`souk resilience` reads the chassis's resilience series from each instance's /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from rich.console import Console

from chassis.resilience import Resilience
from chassis.resilience.metrics import ResilienceCollector
from souk.resilience import InstanceResilience, parse, resilience_table

ORDERS_METRICS = """\
# HELP souk_breaker_state Circuit breaker state per dependency: 0 closed, 1 half-open, 2 open.
# TYPE souk_breaker_state gauge
souk_breaker_state{dependency="billing"} 2.0
souk_breaker_state{dependency="catalog"} 0.0
souk_breaker_rejected_total{dependency="billing"} 17.0
souk_bulkhead_in_flight{dependency="catalog"} 3.0
souk_bulkhead_limit{dependency="catalog"} 64.0
souk_bulkhead_rejected_total{dependency="catalog"} 2.0
souk_retries_total{dependency="catalog"} 5.0
souk_retry_budget_refused_total 1.0
souk_requests_shed_total{lane="read"} 0.0
souk_requests_shed_total{lane="write"} 9.0
http_requests_in_flight 1.0
"""


def test_an_instances_breakers_bulkheads_and_shed_requests_are_read_from_its_metrics() -> None:
    found = parse("orders-1", ORDERS_METRICS)

    billing, catalog = found.dependencies["billing"], found.dependencies["catalog"]
    assert (billing.breaker, billing.refused) == ("open", 17)
    assert (catalog.breaker, catalog.in_flight, catalog.limit) == ("closed", 3, 64)
    assert (catalog.bulkhead_rejected, catalog.retries) == (2, 5)
    assert found.shed == {"read": 0, "write": 9}


def test_the_table_shows_an_open_breaker_and_an_unreachable_instance() -> None:
    console = Console(width=140, record=True)

    console.print(
        resilience_table(
            [parse("orders-1", ORDERS_METRICS), InstanceResilience("billing-1", reachable=False)]
        )
    )

    text = console.export_text()
    assert "billing" in text
    assert "open" in text
    assert "3/64" in text
    assert "unreachable" in text


def test_each_inventory_replicas_breaker_is_listed_from_orders_real_metrics() -> None:
    # The series as orders' collector writes them for a GrpcUpstream's per-replica pipelines.
    resilience = Resilience()
    frozen = resilience.pipeline("inventory@127.0.0.1:50051", family="inventory")
    resilience.pipeline("inventory@127.0.0.1:50052", family="inventory")
    for _ in range(frozen.policy.failure_threshold):
        frozen.breaker.record_failure()
    registry = CollectorRegistry()
    registry.register(ResilienceCollector(resilience))

    found = parse("orders-1", generate_latest(registry).decode())
    console = Console(width=140, record=True)
    console.print(resilience_table([found]))

    replicas = found.dependencies
    assert replicas["inventory@127.0.0.1:50051"].breaker == "open"
    assert replicas["inventory@127.0.0.1:50052"].breaker == "closed"
    text = console.export_text()
    assert "inventory@127.0.0.1:50051" in text
    assert "inventory@127.0.0.1:50052" in text
