"""What the service layer needs from storage and from the bus's inbox, as protocols."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from chassis import unit_of_work

if TYPE_CHECKING:
    from chassis.messaging import Delivery
    from notifications.domain.model import Notification


class NotificationRepository(Protocol):
    async def add(self, notification: Notification) -> None:
        """Store a new notification."""

    async def for_customer(
        self, customer_id: str, *, offset: int, limit: int
    ) -> tuple[list[Notification], int]:
        """One slice of a customer's notifications, newest first, and how many in all."""


class OrderCustomers(Protocol):
    """Whose each order is, as the order events said: payments may not say it."""

    async def remember(self, order_id: str, customer_id: str) -> None:
        """Note that the order is the customer's; noting it again changes nothing."""

    async def customer_of(self, order_id: str) -> str | None:
        """The customer of the order, if an event of it said."""


class Inbox(Protocol):
    """The messages already handled, in the unit of work's transaction."""

    async def seen(self, delivery: Delivery) -> bool:
        """Whether the delivery's message already had its effect."""

    async def record(self, delivery: Delivery) -> None:
        """Record the message as handled, with its effects."""


class UnitOfWork(unit_of_work.UnitOfWork, Protocol):
    """One transaction over notifications' storage; leaving it without ``commit`` rolls back.

    A unit of work may be entered again after it is left, for another transaction.
    """

    @property
    def notifications(self) -> NotificationRepository: ...

    @property
    def order_customers(self) -> OrderCustomers: ...

    @property
    def inbox(self) -> Inbox: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]
