"""A notification: one message a customer would receive about one of their orders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from datetime import datetime

CUSTOMER_ID_MAX_LENGTH: Final = 100


@dataclass(frozen=True, slots=True)
class Draft:
    """What an event tells, before it is known whom: payments may not name the customer."""

    order_id: str
    customer_id: str | None
    subject: str
    """The kind of news, named after the event: ``OrderConfirmed``, ``PaymentDeclined``, ..."""
    text: str
    occurred_at: datetime

    def to(self, customer_id: str, *, notification_id: str) -> Notification:
        """The notification of this draft for ``customer_id``."""
        return Notification(
            id=notification_id,
            customer_id=customer_id,
            order_id=self.order_id,
            subject=self.subject,
            text=self.text,
            occurred_at=self.occurred_at,
        )


@dataclass(frozen=True, slots=True)
class Notification:
    """A message for a customer about one of their orders; ``id`` is the event message's id."""

    id: str
    customer_id: str
    order_id: str
    subject: str
    text: str
    occurred_at: datetime
