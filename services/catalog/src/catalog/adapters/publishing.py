"""The catalog's domain events as the ``catalog`` topic carries them (``contracts.events``).

The unit of work calls :func:`publish` as it commits, so the events of the products written
in a transaction reach the outbox in that same transaction: published if, and only if, the
change they describe is stored. Seeding the demo catalog creates products like an admin
does, so the seeded products are published too: readers such as order-history learn their
names the same way as any other product's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, assert_never

from catalog.domain import events
from contracts.events import catalog as published
from contracts.events import timestamp

if TYPE_CHECKING:
    from collections.abc import Iterable

    from catalog.domain.model import Product
    from chassis.messaging.outbox import Outbox
    from contracts.events import Event


def publish(products: Iterable[Product], outbox: Outbox) -> None:
    """Move the events the products recorded into the outbox, each keyed by its product's id."""
    occurred_at = timestamp(datetime.now(UTC))
    for product in products:
        for event in product.events:
            outbox.add_event(
                published.TOPIC, product.id, contract_event(product, event, occurred_at)
            )
        product.events.clear()


def contract_event(product: Product, event: events.Event, occurred_at: str) -> Event:
    """``event`` in its published form; ``product`` fills in what the domain event leaves out."""
    match event:
        case events.ProductCreated():
            return published.ProductCreated(
                product_id=event.product_id,
                sku=event.sku,
                name=event.name,
                category=event.category,
                price=event.price,
                version=1,
                occurred_at=occurred_at,
            )
        case events.ProductUpdated():
            return published.ProductUpdated(
                product_id=event.product_id,
                sku=product.sku,
                name=event.name,
                category=event.category,
                price=event.price,
                version=event.version,
                changed=event.changed,
                occurred_at=occurred_at,
            )
        case _:
            assert_never(event)
