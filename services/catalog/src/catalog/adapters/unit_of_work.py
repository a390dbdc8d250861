"""The SQLAlchemy unit of work: one session, hence one transaction, per ``async with``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from catalog.adapters.repository import SqlAlchemyCategoryRepository, SqlAlchemyProductRepository
from chassis import unit_of_work

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy.ext.asyncio import AsyncSession

    from chassis.unit_of_work import RecordsEvents


class SqlAlchemyUnitOfWork(unit_of_work.SqlAlchemyUnitOfWork):
    """Implements the service layer's UnitOfWork port on an async session."""

    products: SqlAlchemyProductRepository
    categories: SqlAlchemyCategoryRepository

    def open_repositories(self, session: AsyncSession) -> None:
        self.products = SqlAlchemyProductRepository(session)
        self.categories = SqlAlchemyCategoryRepository(session)

    def written(self) -> Iterable[RecordsEvents]:
        """The products stored in this transaction: their events are published with it."""
        return self.products.written
