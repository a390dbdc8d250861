"""The consumers of topics ``orders`` and ``payments``: decode, then hand to the service layer.

An event type this service does not know is skipped: producers may add new kinds of events
before anyone listens to them. A payload that cannot be read (or a version newer than this
service knows) raises, so the message is tried again and then kept among the dead letters,
to be replayed once the cause is fixed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chassis import get_logger
from chassis.messaging.lifecycle import Consumer
from contracts.events import UnknownEventType, decode, orders, payments
from notifications.service_layer.handlers import take_in

if TYPE_CHECKING:
    from chassis.messaging import Delivery
    from notifications.service_layer.ports import UnitOfWorkFactory

TOPICS = (orders.TOPIC, payments.TOPIC)

_log = get_logger("notifications.consumers")


class EventConsumer:
    """A bus handler: each order or payment event becomes (at most) one notification."""

    def __init__(self, uow_factory: UnitOfWorkFactory) -> None:
        self._uow_factory = uow_factory

    async def __call__(self, delivery: Delivery) -> None:
        """Handle one delivery; raising asks the bus to deliver it again."""
        message = delivery.message
        try:
            event = decode(message.event_type, message.schema_version, message.payload)
        except UnknownEventType:
            _log.info("event type not for notifications; skipped", event_type=message.event_type)
            return
        await take_in(event, delivery, self._uow_factory())


def consumers(uow_factory: UnitOfWorkFactory) -> list[Consumer]:
    """One consumer per topic notifications listens to."""
    consumer = EventConsumer(uow_factory)
    return [Consumer(topic, consumer) for topic in TOPICS]
