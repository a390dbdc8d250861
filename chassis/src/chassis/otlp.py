"""OTLP/HTTP span export at a third of the SDK exporter's cost.

The OpenTelemetry exporter builds a protobuf object per span, attribute, value and event
before serialising them: about 38 µs a span on the catalog's hot path, in the exporting
thread, which holds the GIL the request path needs. This module writes the same bytes
(``ExportTraceServiceRequest``, OTLP/HTTP with ``application/x-protobuf``) directly, in
about 14 µs, and posts them with one ``requests`` session. ``chassis/tests/test_otlp.py``
checks that a collector parses exactly what the SDK's encoder would have sent.

Transient failures (no connection, 429, 502-504) are tried again until the export's time
is up; then the batch is dropped with one error line. Nothing here runs on a request's path:
the ``BatchSpanProcessor``'s thread calls :meth:`OtlpSpanExporter.export`.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import requests
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import Event, ReadableSpan, Span
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import Link, SpanContext

_log = logging.getLogger(__name__)

_KIND = {
    SpanKind.INTERNAL: 1,
    SpanKind.SERVER: 2,
    SpanKind.CLIENT: 3,
    SpanKind.PRODUCER: 4,
    SpanKind.CONSUMER: 5,
}
# SpanFlags: the context says whether its parent is remote (bit 8), and if so (bit 9).
_HAS_IS_REMOTE = 0x100
_IS_REMOTE = 0x200
_fixed64 = struct.Struct("<Q").pack
_double = struct.Struct("<d").pack
_fixed32 = struct.Struct("<I").pack
_RETRIED_STATUSES = frozenset({429, 502, 503, 504})
_Key = tuple["Resource", "InstrumentationScope | None"]
# A collector away for long fills the queue again after every export that times out: one
# "queue full" warning a minute says so without a line per lost batch.
_FULL_WARNING_SECONDS = 60.0


def _varint(number: int) -> bytes:
    if number < 0x80:
        return bytes((number,))
    out = bytearray()
    while number >= 0x80:
        out.append((number & 0x7F) | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


def _field(tag: bytes, data: bytes) -> bytes:
    """A length-delimited field; ``tag`` is the key byte(s), ``(number << 3) | 2``."""
    return tag + _varint(len(data)) + data


def _text(tag: bytes, text: str) -> bytes:
    return _field(tag, text.encode())


def _any_value(value: Any) -> bytes:
    """An ``AnyValue``: string 1, bool 2, int 3, double 4, array 5, kvlist 6, bytes 7."""
    if isinstance(value, str):  # most attributes
        return _text(b"\x0a", value)
    scalar = _SCALARS.get(type(value))
    return scalar(value) if scalar is not None else _other_value(value)


def _int_value(value: int) -> bytes:
    return b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)  # int64, two's complement


_SCALARS: dict[type, Callable[[Any], bytes]] = {
    bool: lambda value: b"\x10\x01" if value else b"\x10\x00",
    int: _int_value,
    float: lambda value: b"\x21" + _double(value),
    bytes: lambda value: _field(b"\x3a", value),
}


def _other_value(value: Any) -> bytes:
    # Subclasses of the scalars (an IntEnum), arrays and maps.
    for kind, encode in _SCALARS.items():
        if isinstance(value, kind):
            return encode(kind(value))
    if isinstance(value, Mapping):
        return _field(b"\x32", _key_values(b"\x0a", value))
    if isinstance(value, Sequence):
        return _field(b"\x2a", b"".join(_field(b"\x0a", _any_value(item)) for item in value))
    return _text(b"\x0a", str(value))


def _key_values(tag: bytes, attributes: Mapping[str, Any] | None) -> bytes:
    """Repeated ``KeyValue`` (key 1, value 2) as field ``tag``."""
    if not attributes:
        return b""
    # The SDK's BoundedAttributes iterate through the Mapping ABC, a look-up per key: read
    # the dict it wraps where there is one.
    pairs = getattr(attributes, "_dict", attributes).items()
    return b"".join([_key_value(tag, key, value) for key, value in pairs])


# Most attributes repeat from span to span (a method, a route, a status, a statement's
# text): their encoded field is kept, bounded, and a repeat costs one dict look-up.
_CACHED_KINDS = frozenset({str, int, bool})
_CACHE_LIMIT = 4096
_CACHED_VALUE_CHARS = 1024
_key_value_cache: dict[tuple[bytes, str, type, Any], bytes] = {}


def _key_value(tag: bytes, key: str, value: Any) -> bytes:
    kind = type(value)
    if kind not in _CACHED_KINDS or (kind is str and len(value) > _CACHED_VALUE_CHARS):
        return _field(tag, _text(b"\x0a", key) + _field(b"\x12", _any_value(value)))
    cache_key = (tag, key, kind, value)  # the kind: True == 1, but they encode apart
    encoded = _key_value_cache.get(cache_key)
    if encoded is None:
        encoded = _field(tag, _text(b"\x0a", key) + _field(b"\x12", _any_value(value)))
        if len(_key_value_cache) >= _CACHE_LIMIT:
            _key_value_cache.clear()
        _key_value_cache[cache_key] = encoded
    return encoded


def _count(tag: bytes, number: int) -> bytes:
    return tag + _varint(number) if number else b""


def _flags(context: SpanContext | None) -> bytes:
    flags = _HAS_IS_REMOTE | (_IS_REMOTE if context is not None and context.is_remote else 0)
    return _fixed32(flags)


def _event(event: Event) -> bytes:
    # time_unix_nano 1, name 2, attributes 3, dropped_attributes_count 4
    return (
        b"\x09"
        + _fixed64(event.timestamp)
        + _text(b"\x12", event.name)
        + _key_values(b"\x1a", event.attributes)
        + _count(b"\x20", getattr(event, "dropped_attributes", 0))
    )


def _link(link: Link) -> bytes:
    # trace_id 1, span_id 2, attributes 4, dropped_attributes_count 5, flags 6 (fixed32)
    context = link.context
    return (
        b"\x0a\x10"
        + context.trace_id.to_bytes(16, "big")
        + b"\x12\x08"
        + context.span_id.to_bytes(8, "big")
        + _key_values(b"\x22", link.attributes)
        + _count(b"\x28", getattr(link, "dropped_attributes", 0))
        + b"\x35"
        + _flags(context)
    )


def encode_span(span: ReadableSpan) -> bytes:
    """One ``Span`` message, as the SDK's ``_encode_span`` writes it."""
    context = span.get_span_context()
    if context is None:
        return b""
    parent = span.parent
    parts = [
        b"\x0a\x10" + context.trace_id.to_bytes(16, "big"),  # trace_id 1
        b"\x12\x08" + context.span_id.to_bytes(8, "big"),  # span_id 2
    ]
    if context.trace_state:
        state = ",".join(f"{key}={value}" for key, value in context.trace_state.items())
        parts.append(_text(b"\x1a", state))  # trace_state 3
    if parent is not None:
        parts.append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))  # parent_span_id 4
    parts.append(_text(b"\x2a", span.name))  # name 5
    parts.append(b"\x30" + _varint(_KIND[span.kind]))  # kind 6
    parts.append(b"\x39" + _fixed64(span.start_time or 0))  # start_time_unix_nano 7
    parts.append(b"\x41" + _fixed64(span.end_time or 0))  # end_time_unix_nano 8
    parts.append(_key_values(b"\x4a", span.attributes))  # attributes 9
    parts.append(_count(b"\x50", span.dropped_attributes))  # 10
    parts.extend(_field(b"\x5a", _event(event)) for event in span.events)  # events 11
    parts.append(_count(b"\x60", span.dropped_events))  # 12
    parts.extend(_field(b"\x6a", _link(link)) for link in span.links)  # links 13
    parts.append(_count(b"\x70", span.dropped_links))  # 14
    status = span.status
    body = (_text(b"\x12", status.description) if status.description else b"") + _count(
        b"\x18", status.status_code.value
    )
    parts.append(_field(b"\x7a", body))  # status 15: message 2, code 3
    parts.append(b"\x85\x01" + _flags(parent))  # flags 16 (fixed32)
    return b"".join(parts)


def _scope(scope: InstrumentationScope | None) -> bytes:
    if scope is None:
        return b""
    return (
        _text(b"\x0a", scope.name)
        + (_text(b"\x12", scope.version) if scope.version else b"")
        + _key_values(b"\x1a", scope.attributes)
    )


def encode_spans(spans: Iterable[ReadableSpan]) -> bytes:
    """An ``ExportTraceServiceRequest``: the spans grouped by resource, then by scope."""
    grouped: dict[Resource, dict[InstrumentationScope | None, list[bytes]]] = {}
    for span in spans:
        scopes = grouped.setdefault(span.resource, {})
        scopes.setdefault(span.instrumentation_scope or None, []).append(encode_span(span))
    return encode_request(grouped)


def encode_request(
    grouped: Mapping[Resource, Mapping[InstrumentationScope | None, list[bytes]]],
) -> bytes:
    """An ``ExportTraceServiceRequest`` of spans already encoded, by resource and scope."""
    request = []
    for resource, scopes in grouped.items():
        # ResourceSpans: resource 1 (attributes 1), scope_spans 2, schema_url 3
        body = [_field(b"\x0a", _key_values(b"\x0a", resource.attributes))]
        for scope, encoded in scopes.items():
            # ScopeSpans: scope 1, spans 2, schema_url 3
            scope_spans = _field(b"\x0a", _scope(scope)) + b"".join(
                _field(b"\x12", span) for span in encoded
            )
            if scope is not None and scope.schema_url:
                scope_spans += _text(b"\x1a", scope.schema_url)
            body.append(_field(b"\x12", scope_spans))
        if resource.schema_url:
            body.append(_text(b"\x1a", resource.schema_url))
        request.append(_field(b"\x0a", b"".join(body)))
    return b"".join(request)


class OtlpSpanExporter(SpanExporter):
    """Spans to an OTLP/HTTP endpoint (``.../v1/traces``) as protobuf."""

    def __init__(self, endpoint: str, *, timeout: float) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._session = requests.Session()
        self._session.headers["Content-Type"] = "application/x-protobuf"
        self._shutdown = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown or not spans:
            return SpanExportResult.FAILURE if self._shutdown else SpanExportResult.SUCCESS
        return self.post(encode_spans(spans), len(spans))

    def post(self, body: bytes, count: int) -> SpanExportResult:
        """Send one encoded export request of ``count`` spans, retrying what is transient."""
        if self._shutdown:
            return SpanExportResult.FAILURE
        deadline = time.monotonic() + self.timeout
        delay = 0.1
        while True:
            left = deadline - time.monotonic()
            try:
                answer = self._session.post(self.endpoint, data=body, timeout=max(left, 0.05))
            except requests.RequestException as error:
                problem = f"{type(error).__name__}"
            else:
                if answer.ok:
                    return SpanExportResult.SUCCESS
                problem = f"HTTP {answer.status_code}"
                if answer.status_code not in _RETRIED_STATUSES:
                    break
            if time.monotonic() + delay >= deadline or self._shutdown:
                break
            time.sleep(delay)
            delay *= 2
        _log.error("%d spans not exported to %s: %s", count, self.endpoint, problem)
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self._shutdown = True
        self._session.close()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:  # noqa: ARG002 - nothing held
        return True


class EncodingSpanProcessor(SpanProcessor):
    """Encode each span the moment it ends; post the bytes in batches from one thread.

    The SDK's ``BatchSpanProcessor`` queues the span objects themselves until its thread
    encodes them: each span's score of objects (attributes, events, contexts, its readable
    copy) lives through the next garbage collections and is promoted to the old generation,
    whose full collections then walk the whole heap of the service; and it asks the kernel
    for the process id on every span (a fork check). Here a span is bytes a few microseconds
    after it ended (bytes are not tracked by the collector), its objects are freed by
    reference counting at once, and the thread only joins and posts bytes.

    Same contract as the SDK's: ``max_queue_size`` spans wait at most (then new spans are
    dropped, with one warning a minute at most), a batch leaves every
    ``schedule_delay`` seconds or as soon as ``max_export_batch_size`` spans wait, a request
    never waits for an export, ``force_flush`` exports what waits, ``shutdown`` exports the
    rest within the exporter's timeout. Like the SDK's, it is not fork-safe: one process per
    service, the provider built after any fork (PITFALLS).
    """

    def __init__(
        self,
        exporter: OtlpSpanExporter,
        *,
        max_queue_size: int,
        max_export_batch_size: int,
        schedule_delay: float,
    ) -> None:
        self._exporter = exporter
        self._max_queue = max_queue_size
        self._max_batch = max_export_batch_size
        self._delay = schedule_delay
        self._lock = threading.Lock()  # guards _pending and _count
        self._export_lock = threading.Lock()  # one export at a time: thread or force_flush
        self._pending: dict[_Key, list[bytes]] = {}
        self._count = 0
        self._quiet_until = 0.0  # no "queue full" warning again before then
        self._wake = threading.Event()
        self._shutdown = False
        self._thread = threading.Thread(target=self._work, name="OtlpSpanExport", daemon=True)
        self._thread.start()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if self._shutdown or context is None or not context.trace_flags.sampled:
            return
        encoded = encode_span(span)
        key = (span.resource, span.instrumentation_scope or None)
        with self._lock:
            if self._count >= self._max_queue:
                now = time.monotonic()
                if now >= self._quiet_until:
                    self._quiet_until = now + _FULL_WARNING_SECONDS
                    _log.warning(
                        "Queue full, dropping spans until %s takes the %d waiting",
                        self._exporter.endpoint,
                        self._count,
                    )
                return
            spans = self._pending.get(key)
            if spans is None:
                self._pending[key] = [encoded]
            else:
                spans.append(encoded)
            self._count += 1
            if self._count >= self._max_batch:
                self._wake.set()

    def _take(self) -> tuple[bytes, int]:
        """Up to a batch of the waiting spans as one request, and how many it holds."""
        with self._lock:
            grouped: dict[Resource, dict[InstrumentationScope | None, list[bytes]]] = {}
            taken = 0
            for key in list(self._pending):
                if taken >= self._max_batch:
                    break
                spans = self._pending[key]
                batch, rest = spans[: self._max_batch - taken], spans[self._max_batch - taken :]
                if rest:
                    self._pending[key] = rest
                else:
                    del self._pending[key]
                grouped.setdefault(key[0], {})[key[1]] = batch
                taken += len(batch)
            self._count -= taken
        return (encode_request(grouped) if taken else b""), taken

    def _export(self) -> bool:
        """Post all that waits, a batch at a time; False once a batch was lost."""
        with self._export_lock:
            while True:
                body, count = self._take()
                if not count:
                    return True
                sent = self._exporter.post(body, count) is SpanExportResult.SUCCESS
                if not sent and self._shutdown:
                    return False  # stopping and the collector is away: drop the rest

    def _work(self) -> None:
        while not self._shutdown:
            self._wake.wait(self._delay)
            self._wake.clear()
            try:
                self._export()
            except Exception:  # noqa: BLE001 - a bug must not end the thread: spans would pile up
                _log.exception("Span export failed")

    def shutdown(self) -> None:
        if self._shutdown:
            return
        self._shutdown = True
        self._wake.set()
        self._thread.join(self._exporter.timeout + 1)
        if not self._thread.is_alive():
            self._export()
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:  # noqa: ARG002 - the exporter's timeout bounds each post
        if self._shutdown:
            return False
        return self._export()
