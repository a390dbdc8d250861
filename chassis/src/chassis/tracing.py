"""OpenTelemetry tracing with W3C trace context in and out."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import TYPE_CHECKING

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from chassis.logs import get_logger

if TYPE_CHECKING:
    from chassis.settings import ServiceSettings

propagator = TraceContextTextMapPropagator()


def build_tracer_provider(settings: ServiceSettings) -> TracerProvider:
    """A provider for this process; spans are exported only when an OTLP endpoint is set."""
    resource = Resource.create(
        {"service.name": settings.service, "service.instance.id": settings.instance_id}
    )
    provider = TracerProvider(resource=resource)
    if settings.otlp_endpoint:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
                OTLPSpanExporter,
            )
        except ImportError:
            get_logger(__name__).warning(
                "otlp exporter not installed; spans stay local",
                hint="pip install opentelemetry-exporter-otlp-proto-http",
            )
        else:
            exporter = OTLPSpanExporter(endpoint=settings.otlp_endpoint)
            provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def inject_context(headers: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Add ``traceparent`` (and ``tracestate``) for the current span to outbound headers."""
    propagator.inject(headers)
    return headers
