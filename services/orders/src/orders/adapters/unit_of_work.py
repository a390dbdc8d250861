"""The SQLAlchemy unit of work: one session, hence one transaction, per ``async with``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from orders.adapters.repository import (
    SqlAlchemyIdempotencyKeyRepository,
    SqlAlchemyOrderRepository,
)

if TYPE_CHECKING:
    from types import TracebackType

    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


class SqlAlchemyUnitOfWork:
    """Implements the service layer's UnitOfWork port on an async session."""

    orders: SqlAlchemyOrderRepository
    idempotency_keys: SqlAlchemyIdempotencyKeyRepository

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def __aenter__(self) -> Self:
        self._session = self._sessionmaker()
        self.orders = SqlAlchemyOrderRepository(self._session)
        self.idempotency_keys = SqlAlchemyIdempotencyKeyRepository(self._session)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Closing rolls back whatever was not committed.
        await self._session.close()

    async def commit(self) -> None:
        await self._session.commit()
