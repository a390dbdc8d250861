"""Taking in one event: the notification it makes, stored once however often it comes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from contracts.events import OrderCancelled, OrderConfirmed, OrderPlaced, OrderRejected
from notifications.domain.drafts import draft_for
from notifications.domain.errors import CustomerUnknown

if TYPE_CHECKING:
    from chassis.messaging import Delivery
    from contracts.events import Event
    from notifications.domain.model import Notification
    from notifications.service_layer.ports import UnitOfWork


async def take_in(event: Event, delivery: Delivery, uow: UnitOfWork) -> Notification | None:
    """Store the notification ``event`` makes for its customer, once per message.

    The notification and the inbox's record of the message commit together, so a message
    delivered again finds itself seen and makes nothing more. A payment that names no
    customer goes to the customer its order's events named; raises CustomerUnknown if none
    has been seen yet (the message is then delivered again, by when it may have).
    """
    draft = draft_for(event)
    async with uow:
        if await uow.inbox.seen(delivery):
            return None
        if isinstance(event, OrderPlaced | OrderConfirmed | OrderRejected | OrderCancelled):
            await uow.order_customers.remember(event.order_id, event.customer_id)
        notification = None
        if draft is not None:
            customer_id = draft.customer_id or await uow.order_customers.customer_of(draft.order_id)
            if customer_id is None:
                raise CustomerUnknown(draft.order_id)
            notification = draft.to(customer_id, notification_id=delivery.message.message_id)
            await uow.notifications.add(notification)
        await uow.inbox.record(delivery)
        await uow.commit()
    return notification
