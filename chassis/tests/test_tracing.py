"""Tracing: a span for every hop (server, client, producer, consumer, statement), exported."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import grpc
import pytest
from aiohttp import web
from fastapi import APIRouter, FastAPI, Request
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import generate_latest
from sqlalchemy import Connection, text

from chassis import Database, ServiceSettings
from chassis.grpc import channel_for
from chassis.messaging import Delivery, Message, SubscribeOptions
from chassis.messaging.dispatch import dispatch
from chassis.messaging.outbox import Outbox
from chassis.requests import outbound_headers, request_id_var
from chassis.testing import eventually
from chassis.trace_context import unsampled_traceparent
from chassis.tracing import client_tracing, current_provider, propagator, tracer
from chassis.upstream import HttpUpstream

from .conftest import LogCapture
from .messaging.recording import DeadLetters, Recorder
from .messaging.test_lifecycle import (
    Greeter,
    GreeterUnitOfWork,
    dead_letters,
    greeter_app,
    publish,
)
from .test_grpc import WHOAMI, serving, urls_of, whoami

Running = Callable[[FastAPI], Any]
__all__ = ["greeter_app"]  # a fixture of the messaging tests, used here too


@pytest.fixture
def spans() -> InMemorySpanExporter:
    """The spans of the app built after this fixture ran (see ``recorded``)."""
    return InMemorySpanExporter()


def recorded(exporter: InMemorySpanExporter) -> InMemorySpanExporter:
    provider = current_provider()
    assert provider is not None
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture
async def callee() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """Another service: answers 200 and keeps the headers of each request it got."""
    seen: list[dict[str, str]] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append({k.lower(): v for k, v in request.headers.items()})
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


def by_kind(exported: tuple[ReadableSpan, ...], kind: SpanKind) -> list[ReadableSpan]:
    return [span for span in exported if span.kind == kind]


async def test_a_call_to_another_service_is_a_client_span_the_callee_continues(
    make_app: Callable[..., FastAPI],
    running: Running,
    spans: InMemorySpanExporter,
    callee: tuple[str, list[dict[str, str]]],
) -> None:
    url, seen = callee
    router = APIRouter()

    @router.get("/calls")
    async def calls(request: Request) -> dict[str, int]:
        session = request.app.state.session
        upstream = HttpUpstream("stock", [url], session, timeout=5, connect_timeout=2)
        await upstream.call("GET", "/one")
        await upstream.call("GET", "/two")
        return {"calls": 2}

    async def open_session(app: FastAPI) -> None:
        app.state.session = aiohttp.ClientSession(trace_configs=[client_tracing()])

    async def close_session(app: FastAPI) -> None:
        await app.state.session.close()

    app = make_app(router, on_startup=[open_session], on_shutdown=[close_session])
    recorded(spans)
    async with running(app) as client:
        response = await client.get(
            "/calls", headers={"traceparent": "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"}
        )
    assert response.status_code == 200

    exported = spans.get_finished_spans()
    [server] = by_kind(exported, SpanKind.SERVER)
    clients = by_kind(exported, SpanKind.CLIENT)
    assert len(clients) == 2
    for client_span, headers in zip(clients, seen, strict=True):
        assert client_span.parent is not None
        assert client_span.parent.span_id == server.context.span_id
        # The callee's parent is the call, not the request that made it.
        _, trace_id, parent_id, _ = headers["traceparent"].split("-")
        assert trace_id == "ab" * 16
        assert int(parent_id, 16) == client_span.context.span_id
    assert server.parent is not None
    assert server.parent.span_id == int("cd" * 8, 16)


async def test_an_event_is_a_producer_span_its_handler_runs_in_a_consumer_span_below(
    make_app: Callable[..., FastAPI], spans: InMemorySpanExporter
) -> None:
    make_app()
    recorded(spans)
    outbox = Outbox()
    with tracer("test").start_as_current_span("POST /orders"):
        outbox.add(
            Message(
                topic="orders",
                key="o-1",
                event_type="OrderPlaced",
                payload=b"{}",
                correlation_id="order-o-1",
            )
        )
    [message] = outbox.pending
    seen: list[tuple[str, str | None]] = []

    async def handle(_: Delivery) -> None:
        seen.append((outbound_headers()["traceparent"], request_id_var.get()))

    await dispatch(
        Recorder(behaviour=handle),
        Delivery(message=message, group="mailing", partition=0),
        SubscribeOptions(),
        DeadLetters(),
    )

    exported = spans.get_finished_spans()
    [request] = [span for span in exported if span.name == "POST /orders"]
    [producer] = by_kind(exported, SpanKind.PRODUCER)
    [consumer] = by_kind(exported, SpanKind.CONSUMER)
    assert producer.parent is not None
    assert producer.parent.span_id == request.context.span_id
    assert consumer.parent is not None
    assert consumer.parent.span_id == producer.context.span_id
    assert consumer.context.trace_id == request.context.trace_id
    assert consumer.attributes is not None
    assert consumer.attributes["messaging.consumer.group.name"] == "mailing"
    [(traceparent, request_id)] = seen
    assert traceparent.split("-")[2] == f"{consumer.context.span_id:016x}"
    assert request_id == "order-o-1"


async def test_a_handler_that_is_buried_marks_its_consumer_span_failed(
    make_app: Callable[..., FastAPI], spans: InMemorySpanExporter
) -> None:
    make_app()
    recorded(spans)

    async def fail(_: Delivery) -> None:
        raise RuntimeError("printer on fire")

    message = Message(topic="orders", key="o-2", event_type="OrderPlaced", payload=b"{}")
    await dispatch(
        Recorder(behaviour=fail),
        Delivery(message=message, group="mailing", partition=0),
        SubscribeOptions(max_attempts=2, retry_delay=0.001),
        DeadLetters(),
    )

    [consumer] = by_kind(spans.get_finished_spans(), SpanKind.CONSUMER)
    assert not consumer.status.is_ok
    assert [event.name for event in consumer.events] == ["handler failed"]


async def test_a_sql_statement_in_a_trace_is_an_event_with_its_text_and_duration(
    make_app: Callable[..., FastAPI], spans: InMemorySpanExporter, tmp_path: Any
) -> None:
    make_app()
    recorded(spans)
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'statements.db'}")
    try:
        await database.check()  # outside a trace: no event anywhere
        with tracer("test").start_as_current_span("GET /products"):
            await database.check()
    finally:
        await database.dispose()

    [request] = spans.get_finished_spans()
    [statement] = [e for e in request.events if e.name == "db.statement"]
    assert statement.attributes is not None
    assert statement.attributes["db.system"] == "sqlite"
    assert "SELECT" in str(statement.attributes["db.query.text"]).upper()
    assert float(statement.attributes["db.duration_ms"]) >= 0  # type: ignore[arg-type]


async def test_a_read_on_the_sqlite_read_path_is_an_event_of_the_request_too(
    make_app: Callable[..., FastAPI], spans: InMemorySpanExporter, tmp_path: Any
) -> None:
    make_app()
    recorded(spans)
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'reads.db'}")

    def query(connection: Connection) -> int:
        return int(connection.execute(text("SELECT 41 + 1")).scalar_one())

    try:
        await database.check()  # creates the file the read path opens
        assert await database.read(query) == 42  # outside a trace: no event anywhere
        with tracer("test").start_as_current_span("GET /products/{product_id}"):
            assert await database.read(query) == 42
    finally:
        await database.dispose()

    [request] = spans.get_finished_spans()
    [statement] = [e for e in request.events if e.name == "db.statement"]
    assert statement.attributes is not None
    assert statement.attributes["db.query.text"] == "SELECT 41 + 1"
    assert float(statement.attributes["db.duration_ms"]) >= 0  # type: ignore[arg-type]


async def test_spans_reach_the_otlp_endpoint_of_the_settings(
    make_app: Callable[..., FastAPI], running: Running, tmp_path: Any
) -> None:
    received: list[ExportTraceServiceRequest] = []
    arrived = asyncio.Event()

    async def collect(request: web.Request) -> web.Response:
        received.append(ExportTraceServiceRequest.FromString(await request.read()))
        arrived.set()
        return web.Response(body=b"", content_type="application/x-protobuf")

    collector = web.Application()
    collector.router.add_post("/v1/traces", collect)
    runner = web.AppRunner(collector)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        settings = ServiceSettings(
            service="demo",
            instance="demo-7",
            data_dir=tmp_path,
            otlp_endpoint=f"http://127.0.0.1:{port}",
        )
        async with running(make_app(settings=settings)) as client:
            assert (await client.get("/healthz")).status_code == 200
        # The app's shutdown flushed the batch; the exporter runs on its own thread.
        await asyncio.wait_for(arrived.wait(), timeout=10)
    finally:
        await runner.cleanup()

    resource = received[0].resource_spans[0].resource
    attributes = {kv.key: kv.value.string_value for kv in resource.attributes}
    assert attributes["service.name"] == "demo"
    assert attributes["service.instance.id"] == "demo-7"
    names = [
        span.name
        for batch in received
        for scoped in batch.resource_spans[0].scope_spans
        for span in scoped.spans
    ]
    assert "GET /healthz" in names


async def test_a_collector_that_hangs_neither_fails_nor_holds_a_request(
    make_app: Callable[..., FastAPI],
    running: Running,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    capture_logs: Callable[[ServiceSettings], LogCapture],
) -> None:
    """The console down (here: taking the spans and never answering) costs a service nothing
    but spans: requests are answered while an export hangs, and once the queue is full the
    spans are dropped, not waited for, with one warning rather than one per span."""
    monkeypatch.setattr("chassis.tracing._QUEUE_SIZE", 16)
    exporting = asyncio.Event()
    release = asyncio.Event()
    answered: list[bool] = []

    async def hang(request: web.Request) -> web.Response:
        await request.read()
        exporting.set()
        await release.wait()
        answered.append(True)
        return web.Response(body=b"", content_type="application/x-protobuf")

    collector = web.Application()
    collector.router.add_post("/v1/traces", hang)
    runner = web.AppRunner(collector)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    settings = ServiceSettings(
        service="demo",
        instance="demo-1",
        data_dir=tmp_path,
        otlp_endpoint=f"http://127.0.0.1:{port}",
    )
    app = make_app(settings=settings)
    logs = capture_logs(settings)
    try:
        async with running(app) as client:
            provider = current_provider()
            assert provider is not None
            assert (await client.get("/healthz")).status_code == 200
            flushing = asyncio.ensure_future(asyncio.to_thread(provider.force_flush, 5000))
            await asyncio.wait_for(exporting.wait(), timeout=10)
            # The exporter's thread waits on the collector: 100 requests more, 100 spans
            # for a queue of 16.
            statuses = [(await client.get("/healthz")).status_code for _ in range(100)]
            assert statuses == [200] * 100
            assert answered == []  # the collector had not answered one export all along
            release.set()
            await flushing
    finally:
        release.set()
        await runner.cleanup()
    full = [r for r in logs.records() if r["event"].startswith("Queue full")]
    assert len(full) == 1, full
    assert full[0]["level"] == "warning"


def test_no_span_is_current_outside_a_request() -> None:
    assert not trace.get_current_span().get_span_context().is_valid


async def test_a_request_whose_caller_did_not_sample_it_records_no_span(
    make_app: Callable[..., FastAPI], running: Running, spans: InMemorySpanExporter
) -> None:
    """What the supervisor's probes and the console's scrapes send: an idle shop exports
    nothing, while a request traced as usual still is."""
    app = make_app()
    recorded(spans)
    async with running(app) as client:
        probe = await client.get("/readyz", headers={"traceparent": unsampled_traceparent()})
        traced = await client.get("/healthz")

    assert (probe.status_code, traced.status_code) == (200, 200)
    assert [span.name for span in spans.get_finished_spans()] == ["GET /healthz"]


def test_each_unsampled_traceparent_is_a_valid_header_of_a_fresh_trace() -> None:
    first, second = unsampled_traceparent(), unsampled_traceparent()
    context = trace.get_current_span(propagator.extract({"traceparent": first})).get_span_context()

    assert context.is_valid
    assert context.is_remote
    assert not context.trace_flags.sampled
    assert first.split("-")[1] != second.split("-")[1]


async def test_a_replayed_dead_letter_runs_in_its_messages_trace_and_the_bus_is_counted(
    greeter_app: tuple[FastAPI, Greeter], running: Running, spans: InMemorySpanExporter
) -> None:
    app, greeter = greeter_app
    recorded(spans)
    async with running(app) as client:
        with tracer("test").start_as_current_span("POST /greetings") as request:
            await publish(app, "poison")
        original = request.get_span_context().trace_id

        async def buried() -> bool:
            return len(await dead_letters(client)) == 1

        await eventually(buried)
        greeter.cured = True
        [letter] = await dead_letters(client)
        operator = "00-" + "ee" * 16 + "-" + "ff" * 8 + "-01"
        replayed = await client.post(
            f"/internal/dead-letters/{letter['id']}/replay", headers={"traceparent": operator}
        )
        assert replayed.status_code == 200
        metrics = (await client.get("/metrics")).text

    consumers = by_kind(spans.get_finished_spans(), SpanKind.CONSUMER)
    assert {span.context.trace_id for span in consumers} == {original}
    assert [span.attributes["souk.attempt"] for span in consumers if span.attributes] == [1, 3]
    assert not consumers[0].status.is_ok  # buried after its two attempts
    assert 'messaging_published_messages_total{topic="greetings"} 1.0' in metrics
    assert (
        'messaging_dead_lettered_messages_total{group="greeter",topic="greetings"} 1.0' in metrics
    )
    assert 'messaging_redeliveries_total{group="greeter",topic="greetings"} 1.0' in metrics
    assert "messaging_outbox_lag_seconds 0.0" in metrics


async def test_a_grpc_call_is_a_client_span_above_the_servers_and_both_sides_are_counted(
    make_app: Callable[..., FastAPI], spans: InMemorySpanExporter
) -> None:
    app = make_app()
    recorded(spans)
    async with serving("echo-1") as [server], channel_for(urls_of(server)) as channel:
        with tracer("test").start_as_current_span("GET /stock"):
            answer = await whoami(channel)
            with pytest.raises(grpc.aio.AioRpcError):
                await whoami(channel, b"missing")
    metrics = generate_latest(app.state.http_metrics.registry).decode()

    exported = spans.get_finished_spans()
    clients = by_kind(exported, SpanKind.CLIENT)
    servers = by_kind(exported, SpanKind.SERVER)
    assert [span.name for span in clients] == [WHOAMI.lstrip("/")] * 2
    assert [span.parent.span_id for span in servers if span.parent] == [
        span.context.span_id for span in clients
    ]
    assert answer["trace_id"] == f"{clients[0].context.trace_id:032x}"
    assert clients[1].attributes is not None
    assert clients[1].attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
    for side in ("client", "server"):
        for code in ("OK", "NOT_FOUND"):
            assert f'grpc_{side}_handled_total{{code="{code}",method="{WHOAMI}"}} 1.0' in metrics


async def test_a_handler_counts_how_long_after_its_write_the_event_reached_it(
    greeter_app: tuple[FastAPI, Greeter], running: Running
) -> None:
    app, greeter = greeter_app
    async with running(app) as client:
        async with GreeterUnitOfWork(app.state.database.sessionmaker) as uow:
            uow.outbox.add(
                Message(
                    topic="greetings",
                    key="ada",
                    event_type="Greeted",
                    payload=b"late",
                    written_at=time.time() - 5,
                )
            )
            await uow.commit()
        await publish(app, "prompt")

        async def greeted() -> bool:
            return greeter.greeted == ["late", "prompt"]

        await eventually(greeted)
        metrics = (await client.get("/metrics")).text

    lag = 'messaging_consumer_lag_seconds_bucket{group="greeter",le="%s",topic="greetings"}'
    assert f"{lag % '1.0'} 1.0" in metrics  # the prompt one, written a moment ago
    assert f"{lag % '5.0'} 1.0" in metrics  # the late one waited at least 5 s
    assert f"{lag % '30.0'} 2.0" in metrics
