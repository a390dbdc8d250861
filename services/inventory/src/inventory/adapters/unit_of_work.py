"""The SQLAlchemy unit of work: one session, hence one transaction, per ``async with``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chassis import unit_of_work
from inventory.adapters.publishing import publish
from inventory.adapters.repository import SqlAlchemyReservationRepository, SqlAlchemyStockRepository

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


class SqlAlchemyUnitOfWork(unit_of_work.SqlAlchemyUnitOfWork):
    """Implements the service layer's UnitOfWork port on an async session."""

    stock: SqlAlchemyStockRepository
    reservations: SqlAlchemyReservationRepository

    def open_repositories(self, session: AsyncSession) -> None:
        self.stock = SqlAlchemyStockRepository(session)
        self.reservations = SqlAlchemyReservationRepository(session)

    async def commit(self) -> None:
        """Commit the reservations written, with their events in the outbox, in one transaction."""
        publish(self.reservations.written, self.outbox)
        await super().commit()
