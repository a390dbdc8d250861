"""The SQLAlchemy unit of work: one session, hence one transaction, per ``async with``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from billing.adapters.accounts import EventSourcedAccountRepository
from billing.adapters.repository import (
    SqlAlchemyIdempotencyKeyRepository,
    SqlAlchemyPaymentRepository,
)
from chassis import unit_of_work

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from chassis.unit_of_work import RecordsEvents


class SqlAlchemyUnitOfWork(unit_of_work.SqlAlchemyUnitOfWork):
    """Implements the service layer's UnitOfWork port on an async session.

    Accounts store a snapshot every ``snapshot_every`` entries (0: never).
    """

    payments: SqlAlchemyPaymentRepository
    idempotency_keys: SqlAlchemyIdempotencyKeyRepository
    accounts: EventSourcedAccountRepository

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, snapshot_every: int = 0
    ) -> None:
        super().__init__(sessionmaker)
        self._snapshot_every = snapshot_every

    def open_repositories(self, session: AsyncSession) -> None:
        self.payments = SqlAlchemyPaymentRepository(session)
        self.idempotency_keys = SqlAlchemyIdempotencyKeyRepository(session)
        self.accounts = EventSourcedAccountRepository(
            session, self.outbox, snapshot_every=self._snapshot_every
        )

    def written(self) -> Iterable[RecordsEvents]:
        """The payments stored in this transaction: their events are published with it."""
        return self.payments.written
