"""The SQLAlchemy unit of work: one session, hence one transaction, per ``async with``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chassis import unit_of_work
from inventory.adapters.repository import SqlAlchemyReservationRepository, SqlAlchemyStockRepository

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy.ext.asyncio import AsyncSession

    from chassis.unit_of_work import RecordsEvents


class SqlAlchemyUnitOfWork(unit_of_work.SqlAlchemyUnitOfWork):
    """Implements the service layer's UnitOfWork port on an async session."""

    stock: SqlAlchemyStockRepository
    reservations: SqlAlchemyReservationRepository

    def open_repositories(self, session: AsyncSession) -> None:
        self.stock = SqlAlchemyStockRepository(session)
        self.reservations = SqlAlchemyReservationRepository(session)

    def written(self) -> Iterable[RecordsEvents]:
        """The reservations stored in this transaction: their events are published with it."""
        return self.reservations.written
