"""The console's view of the running system *now*: each instance with its mesh sidecar, and
every instance's breakers, bulkheads and shed requests, read from the same /metrics that
`souk resilience` reads (the chassis's ResilienceCollector)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, generate_latest

from chassis.resilience import DependencyPolicy, Resilience
from chassis.resilience.breaker import CircuitOpen
from chassis.resilience.bulkhead import BulkheadFull
from chassis.resilience.metrics import ResilienceCollector
from chassis.resilience.shedding import Lanes
from console.gathering import Readings, read_envoy_stats, read_metrics, scrape_once
from console.store import Store

Console = tuple[FastAPI, httpx.AsyncClient]

# Envoy's own words (a sidecar's /stats/prometheus), trimmed: inventory has one endpoint of
# two healthy, one ejected and its pending-requests breaker tripped; the sidecar's own
# clusters (its application, the control plane) are not upstreams.
ENVOY_STATS = """\
# TYPE envoy_cluster_upstream_rq_total counter
envoy_cluster_upstream_rq_total{envoy_cluster_name="inventory"} 41
envoy_cluster_upstream_rq_total{envoy_cluster_name="local-app"} 12
envoy_cluster_upstream_cx_overflow{envoy_cluster_name="inventory"} 0
envoy_cluster_upstream_rq_pending_overflow{envoy_cluster_name="inventory"} 7
envoy_cluster_upstream_rq_retry_overflow{envoy_cluster_name="inventory"} 1
envoy_cluster_upstream_rq_pending_overflow{envoy_cluster_name="catalog"} 0
# TYPE envoy_cluster_circuit_breakers_default_rq_pending_open gauge
envoy_cluster_circuit_breakers_default_rq_pending_open{envoy_cluster_name="inventory"} 1
envoy_cluster_circuit_breakers_default_rq_open{envoy_cluster_name="inventory"} 0
envoy_cluster_circuit_breakers_high_rq_open{envoy_cluster_name="inventory"} 1
envoy_cluster_circuit_breakers_default_rq_open{envoy_cluster_name="catalog"} 0
envoy_cluster_membership_healthy{envoy_cluster_name="inventory"} 1
envoy_cluster_membership_total{envoy_cluster_name="inventory"} 2
envoy_cluster_membership_healthy{envoy_cluster_name="catalog"} 2
envoy_cluster_membership_total{envoy_cluster_name="catalog"} 2
envoy_cluster_membership_healthy{envoy_cluster_name="souk-control-plane"} 1
envoy_cluster_outlier_detection_ejections_active{envoy_cluster_name="inventory"} 1
"""


@pytest.fixture
async def tripped() -> AsyncIterator[str]:
    """The /metrics text of a process whose breaker to billing is open (one call refused),
    whose bulkhead to inventory is full (2 of 2 in flight, one call refused), with 3 reads
    shed and 1 write being worked on."""
    resilience = Resilience(
        DependencyPolicy(failure_threshold=1, reset_timeout=600, max_concurrent=2, max_waiting=0)
    )

    async def fails() -> None:
        raise ConnectionError("billing is down")

    def is_failure(_: BaseException) -> bool:
        return True

    billing = resilience.pipeline("billing")
    with pytest.raises(ConnectionError):
        await billing.call(fails, is_failure=is_failure)
    with pytest.raises(CircuitOpen):
        await billing.call(fails, is_failure=is_failure)

    inventory = resilience.pipeline("inventory")
    release = asyncio.Event()
    holders = [
        asyncio.create_task(inventory.call(release.wait, is_failure=is_failure)) for _ in "ab"
    ]
    await asyncio.sleep(0)
    with pytest.raises(BulkheadFull):
        await inventory.call(release.wait, is_failure=is_failure)
    lanes = Lanes.of(reads=8, writes=4)
    lanes.reads.shed = 3
    lanes.writes.working = 1
    registry = CollectorRegistry()
    registry.register(ResilienceCollector(resilience, lanes))
    try:
        yield generate_latest(registry).decode()
    finally:
        release.set()
        await asyncio.gather(*holders)


async def test_the_scrape_reads_breakers_bulkheads_and_lanes_from_the_chassis_metrics(
    tripped: str,
) -> None:
    scrape = read_metrics(tripped)
    by_name = {dependency.name: dependency for dependency in scrape.dependencies}
    assert by_name["billing"].breaker == "open"
    assert by_name["billing"].refused == 1
    assert by_name["inventory"].breaker == "closed"
    assert (by_name["inventory"].in_flight, by_name["inventory"].limit) == (2, 2)
    assert by_name["inventory"].bulkhead_rejected == 1
    assert scrape.breakers_open == 1
    assert scrape.bulkhead_rejected == 1
    assert {(lane.name, lane.working, lane.shed) for lane in scrape.lanes} == {
        ("read", 0, 3),
        ("write", 1, 0),
        ("grpc", 0, 0),  # the gRPC server's own limit (idle here)
    }


def test_envoy_stats_give_each_upstream_its_health_ejections_and_open_breakers() -> None:
    upstreams = {upstream.cluster: upstream for upstream in read_envoy_stats(ENVOY_STATS)}
    assert set(upstreams) == {"catalog", "inventory"}
    inventory = upstreams["inventory"]
    assert (inventory.healthy, inventory.members, inventory.ejected) == (1, 2, 1)
    assert inventory.breakers_open == ("rq_pending",)  # the default priority's
    assert inventory.overflows == 8
    catalog = upstreams["catalog"]
    assert (catalog.healthy, catalog.members, catalog.breakers_open) == (2, 2, ())


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[dict[str, str]], Awaitable[str]]]:
    """Start a fake instance answering ``{path: body}``; its base URL."""
    runners: list[web.AppRunner] = []

    async def start(answers: dict[str, str]) -> str:
        app = web.Application()
        for path, body in answers.items():

            async def answer(_: web.Request, body: str = body) -> web.Response:
                return web.Response(text=body, content_type="text/plain")

            app.router.add_get(path, answer)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


def _instance(service: str, index: int, url: str, **fields: object) -> dict[str, object]:
    return {
        "service": service,
        "instance": f"{service}-{index}",
        "url": url,
        "state": "ready",
        "health": "ok",
        "restarts": 0,
        "pid": 100 + index,
        **fields,
    }


async def test_the_instances_page_shows_each_instance_with_its_sidecar(
    console: Console, data_dir: Path, serve: Callable[[dict[str, str]], Awaitable[str]]
) -> None:
    app, client = console
    orders = await serve({"/metrics": "# nothing\n"})
    sidecar = await serve({"/stats/prometheus": ENVOY_STATS})
    instances = [
        _instance("orders", 1, orders),
        _instance("orders-sidecar", 1, sidecar, restarts=2),
        _instance("mesh", 1, "http://127.0.0.1:9"),
    ]
    (data_dir / "state.json").write_text(json.dumps({"instances": instances}), encoding="utf-8")
    (data_dir / "mesh").mkdir()
    status = {
        "instances": [
            {
                "instance": "orders-1",
                "spiffe_id": "spiffe://souk.local/service/orders",
                "not_after": "2026-12-07T23:00:00+00:00",
            }
        ]
    }
    (data_dir / "mesh" / "status.json").write_text(json.dumps(status), encoding="utf-8")
    readings: Readings = app.state.readings
    async with httpx.AsyncClient() as scraper:
        await scrape_once(app.state.store, scraper, data_dir, readings)

    page = (await client.get("/")).text
    row = page[page.index('<tr data-instance="orders-1">') :]
    row = row[: row.index("</tr>")]
    assert 'class="sidecar" data-instance="orders-sidecar-1"' in row
    assert '<span class="bad" data-field="restarts">2</span>' in row
    assert "spiffe://souk.local/service/orders" in row
    # The sidecar sees one of inventory's two endpoints healthy, one ejected, a breaker open.
    assert "inventory 1/2 · 1 ejected · open: rq_pending" in row
    assert 'class="upstream " data-upstream="catalog"' in row
    # The sidecar is shown with its instance, not as an instance of its own; the control
    # plane is an instance like any other.
    assert '<tr data-instance="orders-sidecar-1">' not in page
    assert '<tr data-instance="mesh-1">' in page

    breakers = (await client.get("/resilience")).text
    assert '<tr data-instance="orders-sidecar-1" data-upstream="inventory">' in breakers
    assert "rq_pending" in breakers


async def test_without_the_mesh_the_instances_page_says_so(
    console: Console, data_dir: Path
) -> None:
    _, client = console
    state = {"instances": [_instance("catalog", 1, "http://127.0.0.1:9")]}
    (data_dir / "state.json").write_text(json.dumps(state), encoding="utf-8")
    page = (await client.get("/")).text
    assert 'data-instance="catalog-1"' in page
    assert "mesh off" in page
    assert 'class="sidecar"' not in page


async def test_the_breakers_page_shows_state_occupancy_and_refusals_per_dependency(
    console: Console,
    data_dir: Path,
    tripped: str,
    serve: Callable[[dict[str, str]], Awaitable[str]],
) -> None:
    app, client = console
    orders = await serve({"/metrics": tripped})
    instances = [
        _instance("orders", 1, orders),
        _instance("orders", 2, "http://127.0.0.1:9"),  # nothing listens there
    ]
    (data_dir / "state.json").write_text(json.dumps({"instances": instances}), encoding="utf-8")
    assert "No scrape yet" in (await client.get("/resilience")).text
    store: Store = app.state.store
    async with httpx.AsyncClient() as scraper:
        await scrape_once(store, scraper, data_dir, app.state.readings)

    page = (await client.get("/resilience")).text
    billing = _row(page, '<tr data-instance="orders-1" data-dependency="billing">')
    assert '<td class="breaker bad" data-field="breaker">open</td>' in billing
    assert '<td class="bad">1</td>' in billing  # one call refused by the open breaker
    inventory = _row(page, '<tr data-instance="orders-1" data-dependency="inventory">')
    assert '<td class="breaker ok" data-field="breaker">closed</td>' in inventory
    assert '<span data-field="occupancy">2/2</span>' in inventory
    assert '<td class="bad" data-field="bulkhead-rejected">1</td>' in inventory
    assert "unreachable" in _row(page, '<tr data-instance="orders-2">')
    shed = _row(page, '<tr data-instance="orders-1" data-lane="read">')
    assert '<td class="bad">3</td>' in shed
    # The charts keep the history: one open breaker for orders.
    assert (await store.series("breakers_open", since=0))["orders"][-1][1] == 1


def _row(page: str, start: str) -> str:
    row = page[page.index(start) :]
    return row[: row.index("</tr>")]
