"""Taking in one message: archived and projected once, however often it comes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from contracts.events import ProductCreated, ProductUpdated, UnknownEventType, decode
from order_history.domain.model import OrderView, Product, order_id_of

if TYPE_CHECKING:
    from chassis.messaging import Message
    from contracts.events import Event
    from order_history.service_layer.ports import UnitOfWork


def read(message: Message) -> Event | None:
    """The event ``message`` carries, or None if its type is not known here.

    Raises MalformedEvent or UnsupportedSchemaVersion (EventError) for a payload that cannot
    be read, or that is of a version newer than this service knows.
    """
    try:
        return decode(message.event_type, message.schema_version, message.payload)
    except UnknownEventType:
        return None


async def take_in(message: Message, uow: UnitOfWork) -> bool:
    """Archive ``message`` and merge its event into the read model; False if already taken in.

    The archive row and the read model's change commit together, so the archive is exactly
    what the read model was built from, and a message delivered again finds itself archived.
    An event of a type not known here is archived all the same: a later version of this
    service that knows it can project it by rebuilding. Raises EventError, before anything
    is stored, for a message that cannot be read (the bus then tries again, and keeps it
    among the dead letters).
    """
    event = read(message)
    async with uow:
        await uow.projection.lock()
        if await uow.archive.holds(message.message_id):
            return False
        await uow.archive.add(message)
        if event is not None:
            await project(event, uow)
        await uow.commit()
    return True


async def project(event: Event, uow: UnitOfWork) -> None:
    """Merge ``event`` into the stored view of its order, or its product."""
    if isinstance(event, ProductCreated | ProductUpdated):
        product = Product.told_by(event)
        if product.after(await uow.products.get(product.product_id)):
            await uow.products.save(product)
        return
    order_id = order_id_of(event)
    if order_id is None:
        return
    view = await uow.orders.get(order_id) or OrderView(order_id)
    view.apply(event)
    await uow.orders.save(view)
