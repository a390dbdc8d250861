"""Idempotent inbox: a handler's effects and the record of the message commit together, so a
message delivered again has no second effect."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import insert, select

from chassis.messaging.tables import inbox

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from chassis.messaging.message import Delivery


class Inbox:
    """The inbox, in the transaction of one unit of work."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def seen(self, delivery: Delivery) -> bool:
        """Whether ``delivery``'s message already had its effect in its group."""
        return await self.seen_message(delivery.group, delivery.message.message_id)

    async def record(self, delivery: Delivery) -> None:
        """Record the message as handled, in the same transaction as its effects.

        Two deliveries of one message racing each other cannot both commit: the second breaks
        the primary key, rolls back, and is delivered again — to find it ``seen``.
        """
        await self.record_message(delivery.group, delivery.message.message_id)

    async def seen_message(self, group: str, message_id: str) -> bool:
        """:meth:`seen`, by the consumer group and the message's id."""
        found = await self._session.execute(
            select(inbox.c.message_id).where(
                inbox.c.consumer_group == group, inbox.c.message_id == message_id
            )
        )
        return found.first() is not None

    async def record_message(self, group: str, message_id: str) -> None:
        """:meth:`record`, by the consumer group and the message's id."""
        await self._session.execute(
            insert(inbox).values(
                consumer_group=group,
                message_id=message_id,
                handled_at=dt.datetime.now(dt.UTC),
            )
        )
