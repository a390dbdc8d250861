"""Repositories over notifications' tables, implementing the service layer's ports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select

from notifications.adapters.orm import notifications, order_customers
from notifications.domain.model import Notification

if TYPE_CHECKING:
    from sqlalchemy import Row
    from sqlalchemy.ext.asyncio import AsyncSession


class SqlAlchemyNotificationRepository:
    """Notifications in the ``notifications`` table."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, notification: Notification) -> None:
        await self._session.execute(
            insert(notifications).values(
                id=notification.id,
                customer_id=notification.customer_id,
                order_id=notification.order_id,
                subject=notification.subject,
                text=notification.text,
                occurred_at=notification.occurred_at,
            )
        )

    async def for_customer(
        self, customer_id: str, *, offset: int, limit: int
    ) -> tuple[list[Notification], int]:
        mine = notifications.c.customer_id == customer_id
        total = await self._session.scalar(
            select(func.count()).select_from(notifications).where(mine)
        )
        rows = await self._session.execute(
            select(notifications)
            .where(mine)
            .order_by(notifications.c.occurred_at.desc(), notifications.c.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return [_notification(row) for row in rows], total or 0


class SqlAlchemyOrderCustomers:
    """Whose each order is, in the ``order_customers`` table."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def remember(self, order_id: str, customer_id: str) -> None:
        if await self.customer_of(order_id) is None:
            await self._session.execute(
                insert(order_customers).values(order_id=order_id, customer_id=customer_id)
            )

    async def customer_of(self, order_id: str) -> str | None:
        customer: str | None = await self._session.scalar(
            select(order_customers.c.customer_id).where(order_customers.c.order_id == order_id)
        )
        return customer


def _notification(row: Row[Any]) -> Notification:
    return Notification(
        id=row.id,
        customer_id=row.customer_id,
        order_id=row.order_id,
        subject=row.subject,
        text=row.text,
        occurred_at=row.occurred_at,
    )
