"""What travels on the bus: a ``Message`` as published, a ``Delivery`` as a handler sees it."""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

# Header names are the same on every backend; adapters carry them as the broker's headers.
MESSAGE_ID = "souk-message-id"
EVENT_TYPE = "souk-event-type"
SCHEMA_VERSION = "souk-schema-version"
CAUSATION_ID = "souk-causation-id"
CORRELATION_ID = "souk-correlation-id"
KEY = "souk-key"
WRITTEN_AT = "souk-written-at"
TRACE_HEADERS = ("traceparent", "tracestate")

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


def check_name(kind: str, name: str) -> str:
    """``name`` if it is a valid topic or group name (lower case, digits, dashes), else ValueError.

    The rule is the intersection of what RabbitMQ, NATS subjects and Kafka topics accept.
    """
    if not _NAME.match(name):
        raise ValueError(
            f"{kind} name {name!r} must start with a letter and hold only a-z, 0-9 and '-' "
            "(at most 63 characters)"
        )
    return name


def partition_for(key: str, partitions: int) -> int:
    """The partition of ``key``: stable across processes and runs (unlike ``hash()``)."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


def new_message_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class Message:
    """One event to publish: messages with the same ``key`` are delivered in publish order."""

    topic: str
    key: str
    event_type: str
    payload: bytes
    schema_version: int = 1
    message_id: str = field(default_factory=new_message_id)
    causation_id: str | None = None
    correlation_id: str | None = None
    trace_context: Mapping[str, str] = field(default_factory=dict)
    written_at: float | None = field(default=None, compare=False)
    """When the outbox wrote it (seconds since the epoch), so a consumer can tell its lag."""

    def headers(self) -> dict[str, str]:
        """The headers that carry everything but the topic and the payload."""
        headers = {
            MESSAGE_ID: self.message_id,
            EVENT_TYPE: self.event_type,
            SCHEMA_VERSION: str(self.schema_version),
            KEY: self.key,
        }
        if self.causation_id is not None:
            headers[CAUSATION_ID] = self.causation_id
        if self.correlation_id is not None:
            headers[CORRELATION_ID] = self.correlation_id
        if self.written_at is not None:
            headers[WRITTEN_AT] = f"{self.written_at:.6f}"
        headers.update({k: v for k, v in self.trace_context.items() if k in TRACE_HEADERS})
        return headers

    @classmethod
    def from_headers(cls, topic: str, headers: Mapping[str, str], payload: bytes) -> Message:
        """The message that ``headers`` (as made by :meth:`headers`) and ``payload`` describe."""
        try:
            return cls(
                topic=topic,
                key=headers[KEY],
                event_type=headers[EVENT_TYPE],
                payload=payload,
                schema_version=int(headers.get(SCHEMA_VERSION, "1")),
                message_id=headers[MESSAGE_ID],
                causation_id=headers.get(CAUSATION_ID),
                correlation_id=headers.get(CORRELATION_ID),
                trace_context={k: headers[k] for k in TRACE_HEADERS if k in headers},
                written_at=_moment(headers.get(WRITTEN_AT)),
            )
        except KeyError as missing:
            raise MalformedMessageError(f"message on {topic!r} lacks header {missing}") from None


def _moment(text: str | None) -> float | None:
    """A ``written-at`` header as seconds since the epoch; an unreadable one is ignored."""
    if text is None:
        return None
    try:
        moment = float(text)
    except ValueError:
        return None
    return moment if math.isfinite(moment) else None


class MalformedMessageError(ValueError):
    """A message on the bus lacks a header every Souk message carries."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """A message as handed to a handler: ``attempt`` is 1 the first time, 2 on redelivery, ..."""

    message: Message
    group: str
    partition: int
    attempt: int = 1
