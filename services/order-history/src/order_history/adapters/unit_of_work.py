"""The SQLAlchemy unit of work: one session, hence one transaction, per ``async with``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chassis import unit_of_work
from order_history.adapters.repository import (
    SqlAlchemyEventArchive,
    SqlAlchemyOrderViews,
    SqlAlchemyProducts,
    SqlAlchemyProjection,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


class SqlAlchemyUnitOfWork(unit_of_work.SqlAlchemyUnitOfWork):
    """Implements the service layer's UnitOfWork port on an async session."""

    archive: SqlAlchemyEventArchive
    orders: SqlAlchemyOrderViews
    products: SqlAlchemyProducts
    projection: SqlAlchemyProjection

    def open_repositories(self, session: AsyncSession) -> None:
        self.archive = SqlAlchemyEventArchive(session)
        self.orders = SqlAlchemyOrderViews(session)
        self.products = SqlAlchemyProducts(session)
        self.projection = SqlAlchemyProjection(session)
