"""The SQLAlchemy unit of work: one session, hence one transaction, per ``async with``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chassis import unit_of_work
from orders.adapters.repository import EventSourcedOrderRepository, idempotency_keys_of

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from chassis.idempotency import IdempotencyKeys
    from chassis.messaging.inbox import Inbox
    from orders.service_layer.ports import IdempotencyRecord, Receipt

# A checkout appends about a dozen events: one snapshot per order, taken as it settles.
SNAPSHOT_EVERY = 10


class HandledCommandsInbox:
    """The saga's HandledCommands port on the chassis's inbox table."""

    def __init__(self, inbox: Inbox) -> None:
        self._inbox = inbox

    async def seen(self, receipt: Receipt) -> bool:
        return await self._inbox.seen_message(receipt.group, receipt.command_id)

    async def record(self, receipt: Receipt) -> None:
        await self._inbox.record_message(receipt.group, receipt.command_id)


class SqlAlchemyUnitOfWork(unit_of_work.SqlAlchemyUnitOfWork):
    """Implements the service layer's UnitOfWork port on an async session: what the orders'
    streams append reaches the outbox in the same transaction."""

    orders: EventSourcedOrderRepository
    idempotency_keys: IdempotencyKeys[IdempotencyRecord]
    handled_commands: HandledCommandsInbox

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        snapshot_every: int = SNAPSHOT_EVERY,
    ) -> None:
        super().__init__(sessionmaker)
        self._snapshot_every = snapshot_every

    def open_repositories(self, session: AsyncSession) -> None:
        self.orders = EventSourcedOrderRepository(
            session, self.outbox, snapshot_every=self._snapshot_every
        )
        self.idempotency_keys = idempotency_keys_of(session)
        self.handled_commands = HandledCommandsInbox(self.inbox)
