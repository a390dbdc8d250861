"""Hand-written fakes of the ports, for the tests beside this file (imported, not fixtures)."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Self

from chassis.messaging import Delivery

if TYPE_CHECKING:
    from types import TracebackType

    from notifications.domain.model import Notification


def _handled(delivery: Delivery) -> tuple[str, str]:
    return delivery.group, delivery.message.message_id


class FakeStore:
    """What the fake database holds once committed."""

    def __init__(self) -> None:
        self.notifications: list[Notification] = []
        self.order_customers: dict[str, str] = {}
        self.handled: set[tuple[str, str]] = set()


class FakeNotificationRepository:
    def __init__(self, store: FakeStore, pending: list[Notification]) -> None:
        self._store = store
        self._pending = pending

    async def add(self, notification: Notification) -> None:
        self._pending.append(notification)

    async def for_customer(
        self, customer_id: str, *, offset: int, limit: int
    ) -> tuple[list[Notification], int]:
        mine = sorted(
            (n for n in self._store.notifications if n.customer_id == customer_id),
            key=lambda n: (n.occurred_at, n.id),
            reverse=True,
        )
        return mine[offset : offset + limit], len(mine)


class FakeOrderCustomers:
    def __init__(self, store: FakeStore, pending: dict[str, str]) -> None:
        self._store = store
        self._pending = pending

    async def remember(self, order_id: str, customer_id: str) -> None:
        if await self.customer_of(order_id) is None:
            self._pending[order_id] = customer_id

    async def customer_of(self, order_id: str) -> str | None:
        return self._pending.get(order_id) or self._store.order_customers.get(order_id)


class FakeInbox:
    def __init__(self, store: FakeStore, pending: set[tuple[str, str]]) -> None:
        self._store = store
        self._pending = pending

    async def seen(self, delivery: Delivery) -> bool:
        return _handled(delivery) in self._store.handled | self._pending

    async def record(self, delivery: Delivery) -> None:
        self._pending.add(_handled(delivery))


class FakeUnitOfWork:
    """Each ``async with`` collects changes that only ``commit`` applies to the store."""

    notifications: FakeNotificationRepository
    order_customers: FakeOrderCustomers
    inbox: FakeInbox

    def __init__(self, store: FakeStore) -> None:
        self.store = store

    async def __aenter__(self) -> Self:
        self._notifications: list[Notification] = []
        self._customers: dict[str, str] = {}
        self._handled: set[tuple[str, str]] = set()
        self.notifications = FakeNotificationRepository(self.store, self._notifications)
        self.order_customers = FakeOrderCustomers(self.store, self._customers)
        self.inbox = FakeInbox(self.store, self._handled)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        del self._notifications, self._customers, self._handled

    async def commit(self) -> None:
        self.store.notifications.extend(copy.deepcopy(self._notifications))
        self.store.order_customers.update(self._customers)
        self.store.handled |= self._handled
        self._notifications.clear()
        self._customers.clear()
        self._handled.clear()
