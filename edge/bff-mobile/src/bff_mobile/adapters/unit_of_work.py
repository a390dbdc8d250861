"""The SQLAlchemy unit of work: one session, hence one transaction, per ``async with``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bff_mobile.adapters.repository import SqlAlchemyCartRepository
from chassis import unit_of_work

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


class SqlAlchemyUnitOfWork(unit_of_work.SqlAlchemyUnitOfWork):
    """Implements the service layer's UnitOfWork port on an async session."""

    carts: SqlAlchemyCartRepository

    def open_repositories(self, session: AsyncSession) -> None:
        self.carts = SqlAlchemyCartRepository(session)
