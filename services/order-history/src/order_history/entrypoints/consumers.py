"""The consumers of topics ``orders``, ``payments``, ``stock`` and ``catalog``: each message is
handed to the service layer, which archives and projects it.

A message whose event type is not known here is archived and otherwise skipped. A payload
that cannot be read (or of a version newer than this service knows) raises, so the message
is tried again and then kept among the dead letters, to be replayed once the cause is fixed.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from chassis.messaging.lifecycle import Consumer
from contracts.events import catalog, orders, payments, stock
from order_history.service_layer.handlers import take_in

if TYPE_CHECKING:
    from chassis.messaging import Delivery
    from order_history.service_layer.ports import UnitOfWorkFactory

TOPICS = (orders.TOPIC, payments.TOPIC, stock.TOPIC, catalog.TOPIC)


class EventConsumer:
    """A bus handler: each message is archived and merged into the read model, once.

    The read model takes one writer at a time (``Projection.lock``), so the deliveries of
    every topic take turns here first: the others wait without holding a database
    connection each, which would leave none in the pool for the queries.
    """

    def __init__(self, uow_factory: UnitOfWorkFactory) -> None:
        self._uow_factory = uow_factory
        self._turn = asyncio.Lock()

    async def __call__(self, delivery: Delivery) -> None:
        """Handle one delivery; raising asks the bus to deliver it again."""
        async with self._turn:
            await take_in(delivery.message, self._uow_factory())


def consumers(uow_factory: UnitOfWorkFactory) -> list[Consumer]:
    """One consumer per topic order-history projects."""
    consumer = EventConsumer(uow_factory)
    return [Consumer(topic, consumer) for topic in TOPICS]
