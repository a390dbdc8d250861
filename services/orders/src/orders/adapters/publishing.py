"""What the Order's stream publishes as it is appended to: the four events of the ``orders``
topic (``contracts.events``), and, for each step begun, the saga's command on ``checkout``.

The event store hands every appended event to :func:`publication`, in the transaction that
appends it, so an event reaches the outbox if, and only if, it is stored: the state the
stream folds to and what the others hear cannot disagree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from chassis.eventstore import publish_on
from chassis.messaging.message import Message
from contracts.events import orders as published
from orders.adapters.event_codec import STEP_BEGUN
from orders.domain.commands import RunStep
from orders.domain.saga import Step
from orders.service_layer.saga import command_message

if TYPE_CHECKING:
    from chassis.eventstore import RecordedEvent

PUBLISHED_TYPES: Final = frozenset(
    schema.event_type
    for schema in (
        published.OrderPlaced,
        published.OrderConfirmed,
        published.OrderRejected,
        published.OrderCancelled,
    )
)


def _order_of(event: RecordedEvent) -> str:
    order_id: str = event.data["order_id"]
    return order_id


_on_orders_topic = publish_on(published.TOPIC, key=_order_of)


def publication(event: RecordedEvent) -> Message | None:
    """The message an appended event sends, if any; keyed by the order's id."""
    if event.event_type in PUBLISHED_TYPES:
        return _on_orders_topic(event)
    if event.event_type == STEP_BEGUN:
        command = RunStep(order_id=_order_of(event), step=Step(event.data["step"]))
        # The event's id, so that a command published twice is one command to the inbox.
        return command_message(command, message_id=event.event_id)
    return None
