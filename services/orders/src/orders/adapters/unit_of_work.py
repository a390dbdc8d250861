"""The SQLAlchemy unit of work: one session, hence one transaction, per ``async with``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chassis import unit_of_work
from orders.adapters.publishing import publish
from orders.adapters.repository import SqlAlchemyIdempotencyKeyRepository, SqlAlchemyOrderRepository

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


class SqlAlchemyUnitOfWork(unit_of_work.SqlAlchemyUnitOfWork):
    """Implements the service layer's UnitOfWork port on an async session."""

    orders: SqlAlchemyOrderRepository
    idempotency_keys: SqlAlchemyIdempotencyKeyRepository

    def open_repositories(self, session: AsyncSession) -> None:
        self.orders = SqlAlchemyOrderRepository(session)
        self.idempotency_keys = SqlAlchemyIdempotencyKeyRepository(session)

    async def commit(self) -> None:
        """Commit the orders written, with their events in the outbox, in one transaction."""
        publish(self.orders.written, self.outbox)
        await super().commit()
