"""The chassis's OTLP encoder writes what OpenTelemetry's own would, and its exporter posts it,
retrying a collector that is briefly away and dropping the batch once the time is up."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest
from aiohttp import web
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import (
    encode_spans as sdk_encode_spans,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from chassis.otlp import EncodingSpanProcessor, OtlpSpanExporter, encode_spans


def _spans() -> tuple[ReadableSpan, ...]:
    """Spans of two processes and two scopes with every kind of value the encoder meets."""
    memory = InMemorySpanExporter()
    for service in ("catalog", "orders"):
        provider = TracerProvider(
            resource=Resource.create(
                {"service.name": service, "service.instance.id": f"{service}-1"},
                schema_url="https://opentelemetry.io/schemas/1.21.0",
            ),
            span_limits=SpanLimits(max_span_attributes=8, max_events=3, max_links=1),
        )
        provider.add_span_processor(SimpleSpanProcessor(memory))
        remote = SpanContext(
            trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736,
            span_id=0x00F067AA0BA902B7,
            is_remote=True,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
            trace_state=TraceState(
                [("souk", "t61rcWkgMzE"), ("congo", "lZWRzIHRoNhcm5hbCBwbGVhc3VyZS4")]
            ),
        )
        parent = trace.set_span_in_context(trace.NonRecordingSpan(remote))
        server_tracer = provider.get_tracer("chassis.http")
        client_tracer = provider.get_tracer(
            "chassis.http.client", "1.2.3", attributes={"souk.layer": "chassis"}
        )
        with server_tracer.start_as_current_span(
            "GET /products/{product_id}", context=parent, kind=SpanKind.SERVER
        ) as server:
            server.set_attributes(
                {
                    "http.route": "/products/{product_id}",
                    "http.response.status_code": 200,
                    "http.request.method": "GET",
                    "negative": -42,
                    "ratio": 0.25,
                    "cached": False,
                    "tags": ("a", "b"),
                    "numbers": (1, 2, 3),
                    "over the limit": "dropped",
                }
            )
            server.add_event(
                "db.statement",
                {"db.system": "sqlite", "db.query.text": "SELECT 1", "db.duration_ms": 0.12},
            )
            for number in range(4):  # one over the limit
                server.add_event(f"retry {number}", {"attempt": number, "flags": (True, False)})
            client = client_tracer.start_span(
                "POST",
                kind=SpanKind.CLIENT,
                links=[Link(remote, {"why": "replayed"}), Link(remote)],
            )
            client.set_status(Status(StatusCode.ERROR, "payment provider 503"))
            client.end()
            produced = server_tracer.start_span("orders publish", kind=SpanKind.PRODUCER)
            produced.set_status(Status(StatusCode.OK))
            produced.end()
        with server_tracer.start_as_current_span("consume", kind=SpanKind.CONSUMER):
            pass
    return memory.get_finished_spans()


def test_the_encoding_is_the_sdks_own_message() -> None:
    spans = _spans()
    ours = ExportTraceServiceRequest.FromString(encode_spans(spans))
    theirs = sdk_encode_spans(spans)
    assert ours == theirs
    assert len(ours.resource_spans) == 2
    assert {len(r.scope_spans) for r in ours.resource_spans} == {2}
    by_name = {
        span.name: span for scoped in ours.resource_spans[0].scope_spans for span in scoped.spans
    }
    server = by_name["GET /products/{product_id}"]
    assert server.dropped_attributes_count == 1
    assert server.dropped_events_count == 2
    assert server.trace_state == "souk=t61rcWkgMzE,congo=lZWRzIHRoNhcm5hbCBwbGVhc3VyZS4"
    assert by_name["POST"].dropped_links_count == 1
    assert by_name["POST"].status.message == "payment provider 503"


def test_an_encoding_repeated_from_the_cache_is_the_sdks_own_message_too() -> None:
    """Repeated attributes are encoded once and then looked up; a value that equals another
    of a different type (True and 1, 1 and 1.0) is still encoded as its own type."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "catalog"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("chassis.http")
    for value in (True, 1, 1.0, "1", 1, True):
        with tracer.start_as_current_span("GET /", attributes={"value": value, "route": "/"}):
            pass
    spans = memory.get_finished_spans()
    for _ in range(2):  # cold, then from the cache
        assert ExportTraceServiceRequest.FromString(encode_spans(spans)) == sdk_encode_spans(spans)


async def test_the_processor_posts_a_full_batch_at_once_and_the_rest_on_a_flush(
    collector: tuple[str, list[ExportTraceServiceRequest], list[int]],
) -> None:
    """Spans leave in batches of at most the batch size, as soon as a batch waits, each span
    once, grouped by resource and scope as the SDK's exporter would send them."""
    url, received, _ = collector
    processor = EncodingSpanProcessor(
        OtlpSpanExporter(url, timeout=5),
        max_queue_size=64,
        max_export_batch_size=4,
        schedule_delay=3600,  # only a full batch or a flush sends
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "catalog"}))
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("chassis.http")
    try:
        for number in range(4):
            tracer.start_span(f"span {number}").end()
        for _ in range(200):  # the batch is posted from the processor's thread
            if received:
                break
            await asyncio.sleep(0.05)
        assert len(received) == 1
        for number in range(4, 6):
            tracer.start_span(f"span {number}").end()
        assert await asyncio.to_thread(processor.force_flush)
    finally:
        await asyncio.to_thread(provider.shutdown)
    names = [
        [span.name for r in request.resource_spans for s in r.scope_spans for span in s.spans]
        for request in received
    ]
    assert names == [[f"span {n}" for n in range(4)], ["span 4", "span 5"]]
    scope = received[0].resource_spans[0].scope_spans[0].scope
    assert scope.name == "chassis.http"


def test_a_span_that_is_not_sampled_is_not_sent() -> None:
    exporter = OtlpSpanExporter("http://127.0.0.1:9/v1/traces", timeout=0.1)
    processor = EncodingSpanProcessor(
        exporter, max_queue_size=8, max_export_batch_size=8, schedule_delay=3600
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "catalog"}))
    provider.add_span_processor(processor)
    unsampled = SpanContext(
        trace_id=1, span_id=2, is_remote=True, trace_flags=TraceFlags(TraceFlags.DEFAULT)
    )
    parent = trace.set_span_in_context(trace.NonRecordingSpan(unsampled))
    provider.get_tracer("t").start_span("not sampled", context=parent).end()
    assert processor._count == 0
    provider.shutdown()


@pytest.fixture
async def collector() -> tuple[str, list[ExportTraceServiceRequest], list[int]]:
    """A collector that answers each export with the next status of ``answers`` (then 200)."""
    received: list[ExportTraceServiceRequest] = []
    answers: list[int] = []

    async def collect(request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        status = answers.pop(0) if answers else 200
        if status == 200:
            received.append(ExportTraceServiceRequest.FromString(await request.read()))
        return web.Response(status=status, body=b"", content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_post("/v1/traces", collect)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/v1/traces", received, answers
    await runner.cleanup()


async def test_an_export_retries_a_collector_that_is_briefly_unavailable(
    collector: tuple[str, list[ExportTraceServiceRequest], list[int]],
) -> None:
    url, received, answers = collector
    answers.extend([503, 429])
    exporter = OtlpSpanExporter(url, timeout=5)
    spans = _spans()
    try:
        assert await asyncio.to_thread(exporter.export, spans) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert answers == []
    [request] = received
    assert sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans) == len(spans)


async def test_a_refused_batch_is_dropped_with_one_error_line(
    collector: tuple[str, list[ExportTraceServiceRequest], list[int]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, received, answers = collector
    answers.append(400)  # a collector that will not take it: no retry
    exporter = OtlpSpanExporter(url, timeout=5)
    with caplog.at_level(logging.ERROR, logger="chassis.otlp"):
        assert await asyncio.to_thread(exporter.export, _spans()) is SpanExportResult.FAILURE
    exporter.shutdown()
    assert received == []
    [line] = [r.getMessage() for r in caplog.records if r.name == "chassis.otlp"]
    assert "HTTP 400" in line


async def test_no_collector_at_all_ends_the_export_within_its_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    exporter = OtlpSpanExporter(f"http://127.0.0.1:{port}/v1/traces", timeout=0.5)
    with caplog.at_level(logging.ERROR, logger="chassis.otlp"):
        result = await asyncio.to_thread(exporter.export, _spans())
    assert result is SpanExportResult.FAILURE
    assert any("ConnectionError" in r.getMessage() for r in caplog.records)
