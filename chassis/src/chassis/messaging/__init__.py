"""Asynchronous messaging: the bus port, its adapters, the outbox and the inbox.

``connect(url)`` picks the adapter from the URL's scheme: ``embedded:///path``,
``amqp://`` (RabbitMQ), ``nats://`` (NATS JetStream) or ``kafka://`` (any Kafka-protocol
broker). Adapters import their client library only when chosen (see ``brokers``).
"""

from __future__ import annotations

from chassis.messaging.brokers import connect
from chassis.messaging.bus import (
    DEFAULT_PARTITIONS,
    BrokerUnavailableError,
    DeadLetter,
    DeadLetterSink,
    Handler,
    MessageBus,
    SubscribeOptions,
    Subscription,
)
from chassis.messaging.message import Delivery, MalformedMessageError, Message, partition_for

__all__ = [
    "DEFAULT_PARTITIONS",
    "BrokerUnavailableError",
    "DeadLetter",
    "DeadLetterSink",
    "Delivery",
    "Handler",
    "MalformedMessageError",
    "Message",
    "MessageBus",
    "SubscribeOptions",
    "Subscription",
    "connect",
    "partition_for",
]
