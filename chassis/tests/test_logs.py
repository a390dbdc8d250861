"""Structured logs: one JSON object per line, with identity, request id and trace id."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from chassis import ServiceSettings, get_logger
from chassis.logs import configure_logging

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"


def _router() -> APIRouter:
    router = APIRouter()

    @router.get("/items/{item_id}")
    async def get_item(item_id: int) -> dict[str, int]:
        get_logger("demo.handler").info("looked up item", item_id=item_id)
        return {"item_id": item_id}

    return router


def test_configure_logging_writes_one_json_object_per_line_with_identity() -> None:
    settings = ServiceSettings(service="orders", instance="orders-2")
    stream = io.StringIO()
    configure_logging(settings, stream=stream)

    get_logger("demo.structlog").info("hello", answer=42)
    logging.getLogger("demo.stdlib").warning("from %s", "stdlib")

    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["event"] == "hello"
    assert first["answer"] == 42
    assert first["level"] == "info"
    assert second["event"] == "from stdlib"
    assert second["level"] == "warning"
    for record in (first, second):
        assert record["service"] == "orders"
        assert record["instance"] == "orders-2"
        timestamp = datetime.fromisoformat(record["timestamp"])
        assert timestamp.utcoffset() == UTC.utcoffset(None)
        assert abs((datetime.now(UTC) - timestamp).total_seconds()) < 60


def test_the_log_level_setting_filters_lower_levels() -> None:
    stream = io.StringIO()
    configure_logging(ServiceSettings(log_level="warning"), stream=stream)

    get_logger("demo").info("quiet")
    get_logger("demo").error("loud")

    assert [json.loads(line)["event"] for line in stream.getvalue().splitlines()] == ["loud"]


def test_each_request_gets_one_access_line_with_route_status_timing_and_ids(
    make_app: Callable[..., FastAPI], settings: ServiceSettings, capture_logs
) -> None:
    app = make_app(_router())
    logs = capture_logs(settings)

    response = TestClient(app).get(
        "/items/5", headers={"X-Request-Id": "req-log-1", "traceparent": TRACEPARENT}
    )

    assert response.status_code == 200
    [line] = logs.access()
    assert line["method"] == "GET"
    assert line["path"] == "/items/5"
    assert line["route"] == "/items/{item_id}"
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], int | float)
    assert line["duration_ms"] >= 0
    assert line["request_id"] == "req-log-1"
    assert line["trace_id"] == TRACE_ID
    assert line["level"] == "info"


def test_the_access_line_records_failures_too(
    make_app: Callable[..., FastAPI], settings: ServiceSettings, capture_logs
) -> None:
    app = make_app(_router())
    logs = capture_logs(settings)
    client = TestClient(app)

    client.get("/items/x")
    client.get("/nowhere")

    assert [(line["path"], line["route"], line["status"]) for line in logs.access()] == [
        ("/items/x", "/items/{item_id}", 422),
        ("/nowhere", "<unmatched>", 404),
    ]


def test_logs_written_while_handling_a_request_carry_its_request_and_trace_ids(
    make_app: Callable[..., FastAPI], settings: ServiceSettings, capture_logs
) -> None:
    app = make_app(_router())
    logs = capture_logs(settings)

    headers = {"X-Request-Id": "req-log-2", "traceparent": TRACEPARENT}
    TestClient(app).get("/items/9", headers=headers)

    [line] = [r for r in logs.records() if r["event"] == "looked up item"]
    assert line["item_id"] == 9
    assert line["request_id"] == "req-log-2"
    assert line["trace_id"] == TRACE_ID
    assert line["logger"] == "demo.handler"


@pytest.mark.parametrize("probe", ["/healthz", "/readyz", "/metrics"])
def test_probes_do_not_write_access_lines(
    make_app: Callable[..., FastAPI], settings: ServiceSettings, capture_logs, probe: str
) -> None:
    app = make_app(_router())
    with TestClient(app) as client:
        logs = capture_logs(settings)
        assert client.get(probe).status_code == 200
        client.get("/items/1")

    assert [line["path"] for line in logs.access()] == ["/items/1"]


async def test_request_context_does_not_leak_into_later_logs(
    make_app: Callable[..., FastAPI], settings: ServiceSettings, capture_logs
) -> None:
    app = make_app(_router())
    logs = capture_logs(settings)
    # ASGITransport runs the app in this very task, so a leaked contextvar would show below.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://demo.test") as client:
        await client.get("/items/1", headers={"X-Request-Id": "req-log-3"})

    get_logger("demo.after").info("after the request")

    [after] = [r for r in logs.records() if r["event"] == "after the request"]
    assert "request_id" not in after
    assert "trace_id" not in after


def test_reconfiguring_logging_updates_the_identity_on_the_chassiss_own_lines(
    make_app: Callable[..., FastAPI], capture_logs
) -> None:
    # Two services configured one after the other in one process (tests, `souk` tooling):
    # the second must not keep writing access lines under the first one's name.
    first = ServiceSettings(service="first", instance="first-1")
    second = ServiceSettings(service="second", instance="second-1")
    app_one = make_app(_router(), settings=first)
    capture_logs(first)
    TestClient(app_one).get("/items/1")

    app_two = make_app(_router(), settings=second)
    logs = capture_logs(second)
    TestClient(app_two).get("/items/2")

    [line] = logs.access()
    assert (line["service"], line["instance"]) == ("second", "second-1")
