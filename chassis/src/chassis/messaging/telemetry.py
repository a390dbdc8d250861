"""What the bus tells tracing and metrics: a producer span per message, a consumer span per run.

The two hooks the outbox and the consumers call, so that one event's trace goes on from the
request that caused it to every handler that ran because of it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from typing import TYPE_CHECKING

import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from chassis import metrics
from chassis.requests import request_id_from, request_id_var
from chassis.tracing import inject_context, propagator, tracer

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from chassis.messaging.message import Delivery, Message


def produced_trace_context(message: Message) -> dict[str, str]:
    """The trace headers of a new producer span for ``message``, a child of the current span."""
    span = tracer("chassis.messaging").start_span(
        f"publish {message.topic}",
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.operation.type": "create",
            "messaging.destination.name": message.topic,
            "messaging.message.id": message.message_id,
            "souk.message_key": message.key,
            "souk.event_type": message.event_type,
        },
    )
    span.end()
    return dict(inject_context({}, trace.set_span_in_context(span)))


def outbox_waiting(oldest: dt.datetime | None) -> None:
    """The relay looked: ``oldest`` is when its oldest unpublished row was written, if any."""
    metrics.bus().outbox_lag.set(metrics.age_seconds(oldest))


def outbox_published(topics: Iterable[str]) -> None:
    """The relay handed messages of ``topics`` (one entry per message) to the broker."""
    published = metrics.bus().published
    for topic in topics:
        published.labels(topic).inc()


class ConsumerRun:
    """The consumer span of one delivery, for the dispatcher to mark its outcome on."""

    def __init__(self, span: trace.Span, topic: str, group: str) -> None:
        self.span = span
        self._labels = (topic, group)

    def retried(self, attempt: int, error: str) -> None:
        """A handler attempt failed and the message will be delivered again."""
        self.span.add_event("handler failed", {"souk.attempt": attempt, "error.message": error})
        metrics.bus().redelivered.labels(*self._labels).inc()

    def dead_lettered(self, error: str) -> None:
        """The message was buried: no attempt is left."""
        self.span.set_status(Status(StatusCode.ERROR, error[:200]))
        self.span.set_attribute("souk.dead_lettered", value=True)
        metrics.bus().dead_lettered.labels(*self._labels).inc()


@contextlib.contextmanager
def consuming(delivery: Delivery) -> Iterator[ConsumerRun]:
    """Run a delivery's handler in a consumer span continuing its producer's trace.

    The run also gets a request id (the message's correlation id, else its id), so the calls
    a handler makes and its log lines can be followed like a request's.
    """
    message = delivery.message
    parent = propagator.extract(dict(message.trace_context))
    span = tracer("chassis.messaging").start_span(
        f"process {message.topic}",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.operation.type": "process",
            "messaging.destination.name": message.topic,
            "messaging.consumer.group.name": delivery.group,
            "messaging.message.id": message.message_id,
            "messaging.destination.partition.id": str(delivery.partition),
            "souk.message_key": message.key,
            "souk.event_type": message.event_type,
            "souk.attempt": delivery.attempt,
        },
    )
    request_id = request_id_from(message.correlation_id or message.message_id)
    token = otel_context.attach(trace.set_span_in_context(span, parent))
    request_token = request_id_var.set(request_id)
    bound = structlog.contextvars.bind_contextvars(
        request_id=request_id,
        message_id=message.message_id,
        topic=message.topic,
        group=delivery.group,
    )
    started = time.perf_counter()
    if message.written_at is not None:
        lag = max(0.0, time.time() - message.written_at)
        metrics.bus().consumer_lag.labels(message.topic, delivery.group).observe(lag)
    try:
        yield ConsumerRun(span, message.topic, delivery.group)
    finally:
        structlog.contextvars.reset_contextvars(**bound)
        request_id_var.reset(request_token)
        otel_context.detach(token)
        span.end()
        bus = metrics.bus()
        bus.consumed.labels(message.topic, delivery.group).inc()
        bus.handling.labels(message.topic, delivery.group).observe(time.perf_counter() - started)
