"""What the Order's stream publishes as it is appended to: the four events of the ``orders``
topic as they are, and, for each step begun, the saga's command on ``checkout``.

The repository hands every event it appends to :func:`publish`, in the transaction that
appends it, so an event reaches the outbox if, and only if, it is stored: the state the
stream folds to and what the others hear cannot disagree. Each message has the id of the
stored event that sent it, so a command published twice is one command to the inbox.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orders.domain.commands import RunStep
from orders.domain.events import (
    OrderCancelled,
    OrderConfirmed,
    OrderPlaced,
    OrderRejected,
    StepBegun,
)

if TYPE_CHECKING:
    from chassis.messaging.outbox import Outbox
    from orders.domain.events import Event


def publish(outbox: Outbox, event: Event, *, event_id: str) -> None:
    """Put what ``event`` (stored as ``event_id``) sends, if anything, in ``outbox``."""
    match event:
        case OrderPlaced() | OrderConfirmed() | OrderRejected() | OrderCancelled():
            outbox.add_event(event.topic, event.key, event, message_id=event_id)
        case StepBegun():
            command = RunStep(order_id=event.order_id, step=event.step)
            outbox.add_event(command.topic, command.key, command, message_id=event_id)
        case _:
            pass
