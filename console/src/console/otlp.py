"""The OTLP/HTTP receiver: ``POST /v1/traces`` (protobuf or JSON) into the store.

Any OpenTelemetry SDK or collector can send here: every Souk process does when `souk up`
points its ``OTLP_ENDPOINT`` at the console.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, Response
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from chassis import ProblemError
from console.store import Span

if TYPE_CHECKING:
    from collections.abc import Iterable

    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    from console.store import Store

router = APIRouter()
_PROTOBUF = "application/x-protobuf"
_STATUS_ERROR = 2


@router.post("/v1/traces", include_in_schema=False)
async def receive_traces(request: Request) -> Response:
    """Keep the spans of one OTLP export request."""
    body = await request.body()
    export = ExportTraceServiceRequest()
    try:
        if request.headers.get("content-type", "").startswith("application/json"):
            json_format.Parse(body, export)
        else:
            export.ParseFromString(body)
    except (DecodeError, json_format.ParseError) as error:
        raise ProblemError(400, "bad-otlp", "Bad OTLP request", str(error)) from error
    store: Store = request.app.state.store
    await store.add_spans(spans_of(export))
    return Response(ExportTraceServiceResponse().SerializeToString(), media_type=_PROTOBUF)


def spans_of(export: ExportTraceServiceRequest) -> list[Span]:
    """The spans of an export request, each with its resource's service and instance."""
    spans: list[Span] = []
    for resource_spans in export.resource_spans:
        resource = attributes_of(resource_spans.resource.attributes)
        service = str(resource.get("service.name", "unknown"))
        instance = str(resource.get("service.instance.id", service))
        for scope_spans in resource_spans.scope_spans:
            spans.extend(_span(span, service, instance) for span in scope_spans.spans)
    return spans


def _span(span: Any, service: str, instance: str) -> Span:
    attributes = attributes_of(span.attributes)
    if span.status.message:
        attributes["status.message"] = span.status.message
    return Span(
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_id=span.parent_span_id.hex(),
        name=span.name,
        kind=int(span.kind),
        service=service,
        instance=instance,
        start_ns=span.start_time_unix_nano,
        end_ns=span.end_time_unix_nano,
        error=span.status.code == _STATUS_ERROR,
        attributes=attributes,
        events=[
            {
                "name": event.name,
                "offset_ms": round((event.time_unix_nano - span.start_time_unix_nano) / 1e6, 3),
                **attributes_of(event.attributes),
            }
            for event in span.events
        ],
    )


def attributes_of(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "string_value":  # most values: checked first
        return value.string_value
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return attributes_of(value.kvlist_value.values)
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)
