"""The SQLAlchemy unit of work: one session, hence one transaction, per ``async with``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from catalog.adapters.publishing import publish
from catalog.adapters.repository import SqlAlchemyCategoryRepository, SqlAlchemyProductRepository
from chassis import unit_of_work

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


class SqlAlchemyUnitOfWork(unit_of_work.SqlAlchemyUnitOfWork):
    """Implements the service layer's UnitOfWork port on an async session."""

    products: SqlAlchemyProductRepository
    categories: SqlAlchemyCategoryRepository

    def open_repositories(self, session: AsyncSession) -> None:
        self.products = SqlAlchemyProductRepository(session)
        self.categories = SqlAlchemyCategoryRepository(session)

    async def commit(self) -> None:
        """Commit the products written, with their events in the outbox, in one transaction."""
        publish(self.products.written, self.outbox)
        await super().commit()
