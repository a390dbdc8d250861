"""The SQLAlchemy unit of work: one session, hence one transaction, per ``async with``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chassis import unit_of_work
from notifications.adapters.repository import (
    SqlAlchemyNotificationRepository,
    SqlAlchemyOrderCustomers,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


class SqlAlchemyUnitOfWork(unit_of_work.SqlAlchemyUnitOfWork):
    """Implements the service layer's UnitOfWork port on an async session (its inbox included)."""

    notifications: SqlAlchemyNotificationRepository
    order_customers: SqlAlchemyOrderCustomers

    def open_repositories(self, session: AsyncSession) -> None:
        self.notifications = SqlAlchemyNotificationRepository(session)
        self.order_customers = SqlAlchemyOrderCustomers(session)
