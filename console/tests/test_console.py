"""The console: spans in over OTLP, log files shipped, a trace's waterfall with its logs,
log search, the instances of `souk up`, and a store that stays within its bounds."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

from chassis.testing import eventually
from console.gathering import read_metrics, ship_logs_once
from console.store import LogLine, LogQuery, Retention, Span, Store

Console = tuple[FastAPI, httpx.AsyncClient]
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def _attribute(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _export(service: str, spans: list[tuple[str, str, str, int, int]]) -> bytes:
    """(span id, parent id, name, start ms, end ms) spans of one service in one trace."""
    base = time.time_ns()
    proto = [
        ProtoSpan(
            trace_id=bytes.fromhex(TRACE),
            span_id=bytes.fromhex(span_id),
            parent_span_id=bytes.fromhex(parent) if parent else b"",
            name=name,
            kind=ProtoSpan.SPAN_KIND_SERVER,
            start_time_unix_nano=base + start * 1_000_000,
            end_time_unix_nano=base + end * 1_000_000,
            attributes=[_attribute("http.route", name)],
        )
        for span_id, parent, name, start, end in spans
    ]
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource={
                    "attributes": [
                        _attribute("service.name", service),
                        _attribute("service.instance.id", f"{service}-1"),
                    ]
                },
                scope_spans=[ScopeSpans(spans=proto)],
            )
        ]
    )
    return request.SerializeToString()


async def _send(client: httpx.AsyncClient, body: bytes) -> None:
    answer = await client.post(
        "/v1/traces", content=body, headers={"content-type": "application/x-protobuf"}
    )
    assert answer.status_code == 200


async def test_spans_sent_over_otlp_show_as_one_waterfall_with_the_traces_logs(
    console: Console, data_dir: Path
) -> None:
    _, client = console
    await _send(client, _export("gateway", [("a" * 16, "", "POST /api/orders", 0, 50)]))
    await _send(client, _export("orders", [("b" * 16, "a" * 16, "POST /orders", 5, 40)]))
    line = {
        "event": "order placed",
        "service": "orders",
        "instance": "orders-1",
        "level": "info",
        "timestamp": "2026-12-07T18:00:00Z",
        "trace_id": TRACE,
        "span_id": "b" * 16,
        "request_id": "req-1",
    }
    (data_dir / "logs" / "orders-1.log").write_text(json.dumps(line) + "\n", encoding="utf-8")

    async def shipped() -> bool:
        return "order placed" in (await client.get(f"/traces/{TRACE}")).text

    await eventually(shipped, within=5)
    listing = (await client.get("/traces", params={"service": "orders"})).text
    assert TRACE in listing
    page = (await client.get(f"/traces/{TRACE}", params={"span": "b" * 16})).text
    assert page.count('class="span') == 2
    assert "2 services" in page
    assert "http.route" in page  # the selected span's attributes
    assert "order placed" in page  # the span's logs beside the waterfall
    assert (await client.get("/traces", params={"service": "billing"})).text.count(TRACE) == 0


async def test_a_bad_otlp_body_is_refused(console: Console) -> None:
    _, client = console
    answer = await client.post(
        "/v1/traces",
        content=b"\xff\x00nonsense",
        headers={"content-type": "application/x-protobuf"},
    )
    assert answer.status_code == 400


async def test_logs_are_searchable_by_text_service_level_and_trace(
    console: Console, data_dir: Path
) -> None:
    _, client = console
    lines = [
        {
            "event": "stock reserved",
            "service": "inventory",
            "instance": "inventory-1",
            "level": "info",
            "timestamp": "2026-12-07T18:00:01Z",
            "trace_id": TRACE,
        },
        {
            "event": "payment declined",
            "service": "billing",
            "instance": "billing-1",
            "level": "warning",
            "timestamp": "2026-12-07T18:00:02Z",
        },
    ]
    text = (
        "".join(json.dumps(line) + "\n" for line in lines) + "Traceback (most recent call last):\n"
    )
    (data_dir / "logs" / "mixed-1.log").write_text(text, encoding="utf-8")

    async def shipped() -> bool:
        return "Traceback" in (await client.get("/logs")).text

    await eventually(shipped, within=5)
    by_level = (await client.get("/logs", params={"level": "warning"})).text
    assert "payment declined" in by_level
    assert "stock reserved" not in by_level
    by_service = (await client.get("/logs", params={"service": "inventory"})).text
    assert "stock reserved" in by_service
    assert "payment declined" not in by_service
    assert "stock reserved" in (await client.get("/logs", params={"trace_id": TRACE})).text
    assert "payment" in (await client.get("/logs", params={"q": "declined"})).text
    late = (await client.get("/logs", params={"since": "2026-12-07T18:00:02"})).text
    assert "payment declined" in late
    assert "stock reserved" not in late


async def test_log_lines_are_shipped_once_even_as_the_file_grows(
    console: Console, data_dir: Path
) -> None:
    app, client = console
    path = data_dir / "logs" / "catalog-1.log"
    path.write_text('{"event": "first", "service": "catalog"}\n{"event": "sec', encoding="utf-8")
    await asyncio.sleep(0.3)
    with path.open("a", encoding="utf-8") as file:
        file.write('ond", "service": "catalog"}\n')

    async def both() -> bool:
        return "second" in (await client.get("/logs")).text

    await eventually(both, within=5)
    await asyncio.sleep(0.3)
    rows = await app.state.store.logs(LogQuery())
    assert [line.event for _, line in rows] == ["first", "second"]


async def test_the_instances_page_shows_health_and_restarts_from_souk_ups_state(
    console: Console, data_dir: Path
) -> None:
    _, client = console
    state = {
        "instances": [
            {
                "service": "catalog",
                "instance": "catalog-1",
                "url": "http://127.0.0.1:1",
                "state": "running",
                "health": "ok",
                "restarts": 0,
                "pid": 10,
            },
            {
                "service": "orders",
                "instance": "orders-1",
                "url": "http://127.0.0.1:2",
                "state": "running",
                "health": "failing",
                "restarts": 3,
                "pid": 11,
            },
        ]
    }
    (data_dir / "state.json").write_text(json.dumps(state), encoding="utf-8")
    page = (await client.get("/")).text
    assert 'data-instance="catalog-1"' in page
    assert 'data-instance="orders-1"' in page
    assert '<td class="bad">3</td>' in page


def test_the_scrape_sums_red_metrics_without_the_probes() -> None:
    text = """
# TYPE http_requests_total counter
http_requests_total{method="GET",route="/products",status="200"} 8
http_requests_total{method="GET",route="/products",status="503"} 2
http_requests_total{method="GET",route="/healthz",status="200"} 100
# TYPE messaging_outbox_lag_seconds gauge
messaging_outbox_lag_seconds 1.5
# TYPE orders_saga_orders gauge
orders_saga_orders{status="PENDING",settled="false"} 3
"""
    scrape = read_metrics(text)
    assert (scrape.requests, scrape.errors, scrape.outbox_lag) == (10, 2, 1.5)
    assert scrape.saga == (("PENDING", 3.0),)


def _span(number: int) -> Span:
    return Span(TRACE, f"{number:016x}", "", "GET /", 2, "catalog", "catalog-1", 0, 1, error=False)


async def test_a_log_file_that_did_not_grow_is_not_looked_up_in_the_store_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "logs").mkdir()
    path = tmp_path / "logs" / "catalog-1.log"
    path.write_text('{"event": "first"}\n', encoding="utf-8")
    store = Store(tmp_path / "console.db", Retention(3600, 100, 100, 1 << 30))
    shipped: dict[str, int] = {}
    try:
        assert await ship_logs_once(store, tmp_path / "logs", shipped) == 1
        looked_up = store.log_offset

        async def refuse(key: str) -> int:
            raise AssertionError(f"looked up {key}, which did not grow")

        monkeypatch.setattr(store, "log_offset", refuse)
        assert await ship_logs_once(store, tmp_path / "logs", shipped) == 0
        monkeypatch.setattr(store, "log_offset", looked_up)
        with path.open("a", encoding="utf-8") as file:
            file.write('{"event": "second"}\n')
        assert await ship_logs_once(store, tmp_path / "logs", shipped) == 1
        path.write_text('{"event": "anew"}\n', encoding="utf-8")  # replaced, shorter
        assert await ship_logs_once(store, tmp_path / "logs", shipped) == 1
        rows = await store.logs(LogQuery())
        assert sorted(line.event for _, line in rows) == ["anew", "first", "second"]
    finally:
        store.close()


async def test_the_store_keeps_within_its_row_and_age_bounds(tmp_path: Path) -> None:
    store = Store(
        tmp_path / "bounded.db", Retention(3600, max_spans=100, max_logs=100, max_bytes=1 << 30)
    )
    try:
        await store.add_spans([_span(n) for n in range(1, 251)])
        await store.add_logs(
            [
                LogLine("", "catalog", "catalog-1", "info", f"line {n}", None, None, None, "{}")
                for n in range(250)
            ]
        )
        await store.prune()
        assert (await store.counts())["spans"] == 100
        assert (await store.counts())["logs"] == 100
        newest = await store.logs(LogQuery(limit=1))
        assert newest[0][1].event == "line 249"

        store.retention = Retention(0.001, max_spans=100, max_logs=100, max_bytes=1 << 30)
        await asyncio.sleep(0.01)
        await store.prune()
        assert (await store.counts())["spans"] == 0
    finally:
        store.close()


async def test_the_store_drops_the_spans_received_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the row bound the newest spans stay; past the age bound only the old ones go,
    a span received again counting as new."""
    now = [1_000.0]
    monkeypatch.setattr("console.store.time.time", lambda: now[0])
    store = Store(
        tmp_path / "order.db", Retention(60, max_spans=100, max_logs=100, max_bytes=1 << 30)
    )
    try:
        await store.add_spans([_span(n) for n in range(1, 151)])
        await store.prune()
        kept = {int(span.span_id, 16) for span in await store.trace(TRACE)}
        assert kept == set(range(51, 151))

        now[0] += 50
        await store.add_spans([_span(n) for n in range(151, 161)])
        await store.add_spans([_span(60)])  # sent twice: kept once, as received now
        now[0] += 20  # the first 100 are 70 s old, the last 11 are 20 s old
        await store.prune()
        kept = {int(span.span_id, 16) for span in await store.trace(TRACE)}
        assert kept == {60, *range(151, 161)}
    finally:
        store.close()


async def test_the_store_shrinks_below_its_size_bound(tmp_path: Path) -> None:
    bound = 1024 * 1024
    store = Store(tmp_path / "sized.db", Retention(3600, 10**6, 10**6, max_bytes=bound))
    try:
        big = "x" * 2000
        await store.add_logs(
            [
                LogLine("", "catalog", "catalog-1", "info", "big", None, None, None, big)
                for _ in range(2000)
            ]
        )
        await store.prune()
        assert store.path.stat().st_size <= bound
        assert 0 < (await store.counts())["logs"] < 2000
    finally:
        store.close()


async def test_the_charts_draw_rates_per_service_from_the_scraped_counters(
    console: Console,
) -> None:
    app, client = console
    store: Store = app.state.store
    for requests in (100.0, 160.0):
        await store.add_samples([("catalog", "requests", requests), ("orders", "requests", 10)])
        await asyncio.sleep(0.05)
    page = (await client.get("/charts")).text
    assert page.count("<figure") == 10
    assert "<polyline" in page
    assert "catalog:" in page


async def test_a_dead_letter_is_listed_and_replayed_through_its_services_own_route(
    console: Console, data_dir: Path
) -> None:
    from aiohttp import web  # noqa: PLC0415 - only this test plays a service

    replayed: list[str] = []
    letter = {
        "id": 7,
        "topic": "orders",
        "group": "mailing",
        "event_type": "OrderPlaced",
        "attempts": 5,
        "error": "ValueError: no printer",
        "buried_at": "2026-12-07",
    }

    async def listing(_: web.Request) -> web.Response:
        return web.json_response({"items": [] if replayed else [letter]})

    async def replay(request: web.Request) -> web.Response:
        replayed.append(request.match_info["id"])
        return web.json_response(letter)

    service = web.Application()
    service.router.add_get("/internal/dead-letters", listing)
    service.router.add_post("/internal/dead-letters/{id}/replay", replay)
    runner = web.AppRunner(service)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state = {
        "instances": [
            {
                "service": "notifications",
                "instance": "notifications-1",
                "url": f"http://127.0.0.1:{port}",
                "state": "running",
                "health": "ok",
                "restarts": 0,
            }
        ]
    }
    (data_dir / "state.json").write_text(json.dumps(state), encoding="utf-8")
    _, client = console
    try:
        page = (await client.get("/dead-letters")).text
        assert "ValueError: no printer" in page
        assert 'action="/dead-letters/notifications/7/replay"' in page
        answer = await client.post("/dead-letters/notifications/7/replay", data={"confirm": "yes"})
        assert answer.status_code == 303
        assert replayed == ["7"]
        assert "No dead letters." in (await client.get(answer.headers["location"])).text
    finally:
        await runner.cleanup()


async def test_the_live_tail_gets_only_the_newer_lines_that_match_its_filters(
    console: Console, data_dir: Path
) -> None:
    _, client = console
    path = data_dir / "logs" / "catalog-1.log"

    def write(*lines: tuple[str, str]) -> None:
        with path.open("a", encoding="utf-8") as file:
            for service, event in lines:
                file.write(json.dumps({"event": event, "service": service, "level": "info"}))
                file.write("\n")

    write(("catalog", "old line"))

    async def shown(text: str) -> bool:
        return text in (await client.get("/logs")).text

    await eventually(lambda: shown("old line"), within=5)
    page = (await client.get("/logs", params={"tail": "true", "service": "catalog"})).text
    last = int(page.split("let last = ", 1)[1].split(";", 1)[0])
    write(("orders", "other service"), ("catalog", "new line"))
    await eventually(lambda: shown("new line"), within=5)
    rows = (await client.get(f"/logs/after/{last}", params={"service": "catalog"})).text
    assert "new line" in rows
    assert "old line" not in rows
    assert "other service" not in rows
