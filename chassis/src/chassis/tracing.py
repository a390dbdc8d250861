"""OpenTelemetry tracing: one provider per process, exported over OTLP, a span for every hop.

Spans: server (the middleware, the gRPC server), client (every aiohttp call through
:func:`client_tracing`, every gRPC call), producer (a message put in the outbox), consumer
(a handler run), with an event per database statement. A span is encoded as it ends and
exported in batches from a background thread (:class:`chassis.otlp.EncodingSpanProcessor`):
a request never waits for an export, and an unreachable collector only costs dropped spans.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode

from chassis.trace_context import W3CTraceContextPropagator

if TYPE_CHECKING:
    from types import SimpleNamespace

    import aiohttp
    from sqlalchemy import Engine
    from sqlalchemy.ext.asyncio import AsyncEngine

    from chassis.settings import ServiceSettings

propagator = W3CTraceContextPropagator()
# Spans wait here while the collector is away; past this, new spans are dropped, not queued.
_QUEUE_SIZE = 4096
_BATCH_SIZE = 512
_SCHEDULE_DELAY_SECONDS = 0.5
# Bounds how long a stopping process waits for an unreachable collector, retries included.
_EXPORT_TIMEOUT_SECONDS = 2
_STATEMENT_LIMIT = 500

# The provider of the app this process runs: the chassis's own spans (clients, messages,
# statements) go to it. Each app sets it at creation; one process runs one service.
_provider: TracerProvider | None = None


def build_tracer_provider(settings: ServiceSettings) -> TracerProvider:
    """This process's provider; with ``settings.otlp_endpoint`` its spans are exported there.

    The endpoint is an OTLP/HTTP base URL (``http://127.0.0.1:8081`` for the console, a
    collector's ``:4318``, Jaeger's or Tempo's OTLP port): spans go to ``/v1/traces``.
    """
    global _provider  # noqa: PLW0603 - one provider per process, set by its composition root
    resource = Resource.create(
        {"service.name": settings.service, "service.instance.id": settings.instance_id}
    )
    sampler = ParentBased(TraceIdRatioBased(settings.trace_sample_ratio))
    provider = TracerProvider(resource=resource, sampler=sampler)
    if settings.otlp_endpoint:
        # Imported only when spans leave the process (it brings requests).
        from chassis.otlp import EncodingSpanProcessor, OtlpSpanExporter  # noqa: PLC0415

        exporter = OtlpSpanExporter(
            settings.otlp_endpoint.rstrip("/") + "/v1/traces", timeout=_EXPORT_TIMEOUT_SECONDS
        )
        provider.add_span_processor(
            EncodingSpanProcessor(
                exporter,
                max_queue_size=_QUEUE_SIZE,
                max_export_batch_size=min(_BATCH_SIZE, _QUEUE_SIZE),
                schedule_delay=_SCHEDULE_DELAY_SECONDS,
            )
        )
    _provider = provider
    return provider


def current_provider() -> TracerProvider | None:
    """The provider the process's app built, if any."""
    return _provider


def tracer(name: str) -> trace.Tracer:
    """A tracer of the process's provider (a no-op one before any app was built)."""
    if _provider is None:
        return trace.get_tracer(name)
    return _provider.get_tracer(name)


def inject_context(
    headers: MutableMapping[str, str], context: otel_context.Context | None = None
) -> MutableMapping[str, str]:
    """Add ``traceparent`` (and ``tracestate``) for the current span to outbound headers."""
    propagator.inject(headers, context=context)
    return headers


@contextlib.contextmanager
def activated(span: trace.Span, parent: otel_context.Context) -> Iterator[None]:
    """Make ``span`` current, keeping what ``parent`` carried (the caller's tracestate)."""
    token = otel_context.attach(trace.set_span_in_context(span, parent))
    try:
        yield
    finally:
        otel_context.detach(token)


def client_tracing() -> aiohttp.TraceConfig:
    """Give an aiohttp session a client span per request, its context in the request headers."""
    # Imported here: a process that calls no one over HTTP (a payment simulator) never loads
    # aiohttp (~7 MB).
    import aiohttp  # noqa: PLC0415

    config = aiohttp.TraceConfig()
    config.on_request_start.append(_request_starts)
    config.on_request_end.append(_request_ends)
    config.on_request_exception.append(_request_fails)
    return config


async def _request_starts(
    _: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestStartParams
) -> None:
    url = params.url
    span = tracer("chassis.http.client").start_span(
        params.method,
        kind=SpanKind.CLIENT,
        attributes={
            "http.request.method": params.method,
            "url.full": str(url.with_query(None)),
            "server.address": url.host or "",
            "server.port": url.port or 0,
        },
    )
    context.span = span
    # Replaces the caller's traceparent: the callee's parent is this call, not the request.
    propagator.inject(params.headers, context=trace.set_span_in_context(span))


async def _request_ends(
    _: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestEndParams
) -> None:
    span: trace.Span | None = getattr(context, "span", None)
    if span is None:
        return
    status = params.response.status
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))
    span.end()


async def _request_fails(
    _: aiohttp.ClientSession,
    context: SimpleNamespace,
    params: aiohttp.TraceRequestExceptionParams,
) -> None:
    span: trace.Span | None = getattr(context, "span", None)
    if span is None:
        return
    span.set_attribute("error.type", type(params.exception).__name__)
    span.set_status(Status(StatusCode.ERROR, str(params.exception)[:200]))
    span.end()


def trace_statements(engine: AsyncEngine | Engine) -> None:
    """A ``db.statement`` event per SQL statement run on ``engine`` inside a trace, on the
    span that ran it, with the statement, its duration and its outcome.

    Events rather than spans: a checkout runs a few hundred statements, and a span each
    would triple what every process exports for it.
    """
    # Imported here: a process without a database (the gateway, the simulators, the console)
    # never loads SQLAlchemy (~17 MB).
    from sqlalchemy import event  # noqa: PLC0415
    from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: PLC0415

    dialect = engine.dialect.name
    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
    event.listen(sync_engine, "before_cursor_execute", _statement_starts)
    event.listen(sync_engine, "after_cursor_execute", _statement_ends(dialect))
    event.listen(sync_engine, "handle_error", _statement_fails(dialect))


def _statement_starts(
    _conn: Any, _cursor: Any, _statement: str, _params: Any, context: Any, _many: bool
) -> None:
    if context is not None and trace.get_current_span().is_recording():
        context._souk_started = time.perf_counter()


def _record_statement(
    context: Any, dialect: str, statement: str, error: BaseException | None = None
) -> None:
    started: float | None = getattr(context, "_souk_started", None)
    if started is None:
        return  # statements outside any recorded trace (start-up, background loops)
    context._souk_started = None
    attributes: dict[str, str | float] = {
        "db.system": dialect,
        "db.query.text": statement[:_STATEMENT_LIMIT],
        "db.duration_ms": round((time.perf_counter() - started) * 1000, 3),
    }
    if error is not None:
        attributes["error.type"] = type(error).__name__
    trace.get_current_span().add_event("db.statement", attributes)


def _statement_ends(dialect: str) -> Any:
    def ends(
        _conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool
    ) -> None:
        _record_statement(context, dialect, statement)

    return ends


def _statement_fails(dialect: str) -> Any:
    def fails(exception_context: Any) -> None:
        context = exception_context.execution_context
        statement = exception_context.statement or ""
        _record_statement(context, dialect, statement, exception_context.original_exception)

    return fails
