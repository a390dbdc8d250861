"""The orders' domain events as the ``orders`` topic carries them (``contracts.events``),
and the saga's commands as the ``checkout`` topic does.

The unit of work calls :func:`publish` as it commits, so the events and commands of the
orders written in a transaction reach the outbox in that same transaction: published if,
and only if, the change they describe is stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, assert_never

from contracts.events import orders as published
from contracts.events import timestamp
from orders.domain import events
from orders.service_layer.saga import command_message

if TYPE_CHECKING:
    from collections.abc import Iterable

    from chassis.messaging.outbox import Outbox
    from contracts.events import Event
    from orders.domain.model import Order


def publish(orders: Iterable[Order], outbox: Outbox) -> None:
    """Move the events and commands the orders recorded into the outbox, each keyed by its
    order's id."""
    occurred_at = timestamp(datetime.now(UTC))
    for order in orders:
        for event in order.events:
            outbox.add_event(published.TOPIC, order.id, contract_event(order, event, occurred_at))
        order.events.clear()
        for command in order.commands:
            outbox.add(command_message(command))
        order.commands.clear()


def contract_event(order: Order, event: events.Event, occurred_at: str) -> Event:
    """``event`` in its published form; ``order`` fills in what the domain event leaves out."""
    match event:
        case events.OrderPlaced():
            return published.OrderPlaced(
                order_id=event.order_id,
                customer_id=event.customer_id,
                items=tuple(published.OrderItem(p, q) for p, q in event.items),
                occurred_at=occurred_at,
            )
        case events.OrderConfirmed():
            return published.OrderConfirmed(
                order_id=event.order_id,
                customer_id=event.customer_id,
                items=_priced_items(order),
                total=event.total,
                occurred_at=occurred_at,
            )
        case events.OrderRejected():
            return published.OrderRejected(
                order_id=event.order_id,
                customer_id=event.customer_id,
                reason=event.reason,
                occurred_at=occurred_at,
            )
        case events.OrderCancelled():
            return published.OrderCancelled(
                order_id=event.order_id,
                customer_id=event.customer_id,
                was_confirmed=event.was_confirmed,
                total=order.total,
                occurred_at=occurred_at,
            )
        case _:
            assert_never(event)


def _priced_items(order: Order) -> tuple[published.PricedItem, ...]:
    items = []
    for line in order.lines:
        if line.sku is None or line.name is None or line.unit_price is None:
            raise ValueError(f"order {order.id} is confirmed with an unpriced line")
        items.append(
            published.PricedItem(
                product_id=line.product_id,
                sku=line.sku,
                name=line.name,
                quantity=line.quantity,
                unit_price=line.unit_price,
            )
        )
    return tuple(items)
