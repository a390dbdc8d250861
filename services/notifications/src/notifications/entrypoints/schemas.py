"""The JSON notifications' HTTP API answers with."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from chassis.pagination import Page, PageModel
from notifications.domain.model import Notification


class NotificationPublic(BaseModel):
    """A message a customer would receive about one of their orders."""

    id: str = Field(description="The id of the event message it came from.")
    order_id: str = Field(examples=["6f0b9d2e-8f1c-4e7a-9d3b-2c5a1e4f7b80"])
    subject: str = Field(
        description="The kind of news, named after its event.", examples=["OrderConfirmed"]
    )
    text: str = Field(examples=["Your order o-123 is confirmed: 2 items, 59.90 EUR"])
    occurred_at: datetime

    @classmethod
    def from_domain(cls, notification: Notification) -> NotificationPublic:
        return cls(
            id=notification.id,
            order_id=notification.order_id,
            subject=notification.subject,
            text=notification.text,
            occurred_at=notification.occurred_at,
        )


class NotificationPage(PageModel[NotificationPublic]):
    """One page of a customer's notifications, newest first."""

    @classmethod
    def from_page(cls, page: Page[Notification]) -> NotificationPage:
        return cls.of(page, NotificationPublic.from_domain)
