"""RED metrics on /metrics, labelled by route template, on a registry per app."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from chassis.metrics import PeriodicRefresh, age_seconds

if TYPE_CHECKING:
    from chassis import ServiceSettings
    from chassis.tests.conftest import LogCapture


def _router() -> APIRouter:
    router = APIRouter()

    @router.get("/items/{item_id}")
    async def get_item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    return router


def _samples(client: TestClient, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == name
    }


def _requests(client: TestClient) -> dict[tuple[str, str, str], float]:
    return {
        (labels["method"], labels["route"], labels["status"]): value
        for key, value in _samples(client, "http_requests_total").items()
        for labels in [dict(key)]
    }


def test_metrics_are_served_in_the_prometheus_text_format(
    make_app: Callable[..., FastAPI],
) -> None:
    response = TestClient(make_app(_router())).get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {"http_requests", "http_request_duration_seconds", "http_requests_in_flight"} <= names


def test_requests_are_counted_by_route_template_not_raw_path(
    make_app: Callable[..., FastAPI],
) -> None:
    client = TestClient(make_app(_router()))
    for item_id in (1, 2, 3):
        client.get(f"/items/{item_id}")
    client.get("/items/nope")

    counts = _requests(client)

    assert counts[("GET", "/items/{item_id}", "200")] == 3
    assert counts[("GET", "/items/{item_id}", "422")] == 1
    assert not any(route.startswith("/items/") and "{" not in route for _, route, _ in counts)


def test_unmatched_paths_share_one_label(make_app: Callable[..., FastAPI]) -> None:
    client = TestClient(make_app(_router()))
    for path in ("/a", "/b/c", "/random-123"):
        client.get(path)

    counts = _requests(client)

    assert counts[("GET", "<unmatched>", "404")] == 3
    assert counts == {("GET", "<unmatched>", "404"): 3}


def test_unhandled_errors_are_counted_as_500(make_app: Callable[..., FastAPI]) -> None:
    client = TestClient(make_app(_router()))
    client.get("/boom")

    assert _requests(client)[("GET", "/boom", "500")] == 1


def test_the_duration_histogram_counts_every_request(make_app: Callable[..., FastAPI]) -> None:
    client = TestClient(make_app(_router()))
    for item_id in range(4):
        client.get(f"/items/{item_id}")

    samples = _samples(client, "http_request_duration_seconds_count")

    assert samples[(("method", "GET"), ("route", "/items/{item_id}"))] == 4


def test_in_flight_requests_return_to_zero_after_failures(
    make_app: Callable[..., FastAPI],
) -> None:
    client = TestClient(make_app(_router()))
    client.get("/boom")
    client.get("/items/1")

    # The scrape itself is the only request in flight.
    assert _samples(client, "http_requests_in_flight") == {(): 1.0}


def test_two_apps_in_one_process_keep_separate_metrics(
    make_app: Callable[..., FastAPI],
) -> None:
    first = TestClient(make_app(_router()))
    second = TestClient(make_app(_router()))

    first.get("/items/1")
    first.get("/items/2")
    second.get("/items/3")

    assert _requests(first)[("GET", "/items/{item_id}", "200")] == 2
    assert _requests(second)[("GET", "/items/{item_id}", "200")] == 1


NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("oldest", "age"),
    [
        (None, 0.0),
        (NOW - dt.timedelta(seconds=90), 90.0),
        # SQLite hands back no offset: what the chassis wrote is UTC.
        ((NOW - dt.timedelta(seconds=90)).replace(tzinfo=None), 90.0),
        (NOW.astimezone(dt.timezone(dt.timedelta(hours=2))) - dt.timedelta(seconds=5), 5.0),
        # Another machine's clock ahead of ours: no negative age.
        (NOW + dt.timedelta(seconds=30), 0.0),
    ],
)
def test_the_age_of_the_oldest_waiting_one(oldest: dt.datetime | None, age: float) -> None:
    assert age_seconds(oldest, now=NOW) == age


async def test_a_periodic_refresh_goes_on_after_a_failed_one_and_ends_on_stop(
    settings: ServiceSettings, capture_logs: Callable[[ServiceSettings], LogCapture]
) -> None:
    logs = capture_logs(settings)
    calls = 0
    third = asyncio.Event()

    async def refresh() -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            third.set()
        if calls == 1:
            raise RuntimeError("database is locked")

    refreshing = PeriodicRefresh(refresh, interval=0, name="demo-gauges")
    refreshing.start()
    await asyncio.wait_for(third.wait(), timeout=10)
    await refreshing.stop()
    stopped_at = calls
    for _ in range(5):
        await asyncio.sleep(0)

    assert calls == stopped_at
    failures = [r for r in logs.records() if r["event"] == "metrics not refreshed"]
    assert len(failures) == 1
    assert failures[0]["refresh"] == "demo-gauges"
    assert failures[0]["level"] == "warning"


async def test_a_periodic_refresh_stopped_before_it_started_is_no_error() -> None:
    async def refresh() -> None:
        raise AssertionError("never called")

    await PeriodicRefresh(refresh, interval=1, name="idle").stop()
