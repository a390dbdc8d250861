"""The dead letters of a service: messages its handlers gave up on, kept in its database to
be inspected and replayed (``souk dlq``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import insert, select, update

from chassis.messaging.message import Message
from chassis.messaging.tables import dead_letters

if TYPE_CHECKING:
    from sqlalchemy import Row
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from chassis.messaging.bus import DeadLetter


@dataclass(frozen=True, slots=True)
class StoredDeadLetter:
    """A dead letter as kept: its number in the store and when it was buried or replayed."""

    id: int
    message: Message
    group: str
    attempts: int
    error: str
    buried_at: dt.datetime
    replayed_at: dt.datetime | None


class DatabaseDeadLetters:
    """A ``DeadLetterSink`` in the service's own database."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def bury(self, dead_letter: DeadLetter) -> None:
        """Keep ``dead_letter`` until someone replays it."""
        message = dead_letter.message
        async with self._sessionmaker() as session:
            await session.execute(
                insert(dead_letters).values(
                    consumer_group=dead_letter.group,
                    topic=message.topic,
                    key=message.key,
                    message_id=message.message_id,
                    event_type=message.event_type,
                    headers=message.headers(),
                    payload=message.payload,
                    attempts=dead_letter.attempts,
                    error=dead_letter.error,
                    buried_at=dt.datetime.now(dt.UTC),
                )
            )
            await session.commit()

    async def list(self, *, include_replayed: bool = False) -> list[StoredDeadLetter]:
        """The dead letters, oldest first; replayed ones only if asked for."""
        query = select(dead_letters).order_by(dead_letters.c.id)
        if not include_replayed:
            query = query.where(dead_letters.c.replayed_at.is_(None))
        async with self._sessionmaker() as session:
            return [_stored(row) for row in (await session.execute(query)).all()]

    async def get(self, dead_letter_id: int) -> StoredDeadLetter | None:
        """Dead letter number ``dead_letter_id``, if there is one."""
        async with self._sessionmaker() as session:
            query = select(dead_letters).where(dead_letters.c.id == dead_letter_id)
            row = (await session.execute(query)).first()
        return None if row is None else _stored(row)

    async def claim(self, dead_letter_id: int) -> bool:
        """Mark dead letter ``dead_letter_id`` replayed unless it already is; whether it was not.

        One conditional update, so of two replays racing for a letter exactly one wins.
        """
        async with self._sessionmaker() as session:
            claimed = await session.execute(
                update(dead_letters)
                .where(dead_letters.c.id == dead_letter_id, dead_letters.c.replayed_at.is_(None))
                .values(replayed_at=dt.datetime.now(dt.UTC))
            )
            await session.commit()
        return bool(claimed.rowcount)  # type: ignore[attr-defined]

    async def record_failure(self, dead_letter_id: int, error: str) -> None:
        """A claimed replay failed again: the letter is dead once more, with this error."""
        async with self._sessionmaker() as session:
            await session.execute(
                update(dead_letters)
                .where(dead_letters.c.id == dead_letter_id)
                .values(attempts=dead_letters.c.attempts + 1, error=error, replayed_at=None)
            )
            await session.commit()


def _stored(row: Row[tuple[object, ...]]) -> StoredDeadLetter:
    values = row._mapping
    return StoredDeadLetter(
        id=values["id"],
        message=Message.from_headers(values["topic"], values["headers"], values["payload"]),
        group=values["consumer_group"],
        attempts=values["attempts"],
        error=values["error"],
        buried_at=values["buried_at"],
        replayed_at=values["replayed_at"],
    )
