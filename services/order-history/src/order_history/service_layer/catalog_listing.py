"""Learning the products published before order-history first subscribed, from the catalog.

A consumer group gets the messages published after it first subscribed, and nothing before.
The catalog publishes its demo products when it seeds them, at the start of a fresh system,
when order-history may not have subscribed yet: those events never reach it. So once
subscribed (at every start), order-history reads the catalog's product listing and takes in
each product's current version as the catalog event of that version (``ProductCreated`` for
version 1, else ``ProductUpdated`` with nothing named as changed), archived like any message.
Its message id is derived from the product and version, so reading the same listing again
archives nothing new; anything published after subscribing arrives on the bus anyway, and a
product's higher version always wins, whichever way it came.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from chassis.messaging import Message
from contracts.events import catalog
from order_history.service_layer.handlers import take_in

if TYPE_CHECKING:
    from contracts.events import ProductCreated, ProductUpdated
    from order_history.service_layer.ports import Catalog, UnitOfWorkFactory

LISTING: Final = "catalog-listing"


def listing_message(event: ProductCreated | ProductUpdated) -> Message:
    """A listed product's event as a message, with an id of its product and version."""
    return Message(
        topic=catalog.TOPIC,
        key=event.product_id,
        event_type=event.event_type,
        schema_version=event.schema_version,
        payload=event.to_json(),
        message_id=f"{LISTING}-{event.product_id}-v{event.version}",
    )


async def learn_catalog(listing: Catalog, uow_factory: UnitOfWorkFactory) -> int:
    """Take in every product of the catalog's listing; how many were new here (at that version).

    Raises UpstreamFailure if the catalog cannot list them now.
    """
    learnt = 0
    for event in await listing.products():
        learnt += await take_in(listing_message(event), uow_factory())
    return learnt
