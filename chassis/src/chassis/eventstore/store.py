"""Streams of events, appended with optimistic concurrency inside the caller's transaction.

An ``EventStore`` lives on the session of one unit of work: what it appends commits or rolls
back with everything else that transaction wrote, the outbox rows of the events included,
so the state a stream holds and the events published from it cannot disagree.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import RowMapping, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from chassis.eventstore.tables import STREAM_ID_MAX_LENGTH, events, snapshots, streams
from chassis.messaging.message import Message

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from chassis.messaging.outbox import Outbox


class ConcurrencyConflict(Exception):  # noqa: N818 - named for what happened, as the issue does
    """Another writer appended to the stream since it was read: nothing of this append is stored.

    Reload the stream and decide again (:func:`chassis.eventstore.retry_on_conflict`), or
    refuse the command; two writers' events are never merged.
    """

    def __init__(self, stream_id: str, expected_version: int) -> None:
        super().__init__(
            f"stream {stream_id!r} is no longer at version {expected_version}: "
            "another writer appended to it first"
        )
        self.stream_id = stream_id
        self.expected_version = expected_version


def new_event_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append: its type, the version of its schema and its JSON data.

    ``event_id`` is also the id of the message that publishes it, so a consumer's inbox
    recognises a redelivery. Give one derived from a request's idempotency key to make the
    request's effect findable (:meth:`EventStore.find`).
    """

    event_type: str
    data: Mapping[str, Any]
    schema_version: int = 1
    event_id: str = field(default_factory=new_event_id)
    causation_id: str | None = None
    correlation_id: str | None = None


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as the stream holds it: ``version`` is its place in the stream, from 1."""

    stream_id: str
    version: int
    event_type: str
    schema_version: int
    data: Mapping[str, Any]
    event_id: str
    recorded_at: dt.datetime
    causation_id: str | None = None
    correlation_id: str | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A stream's folded state at ``version``, in the aggregate's snapshot ``format``."""

    stream_id: str
    version: int
    format: int
    state: Mapping[str, Any]


Publication = Callable[[RecordedEvent], Message | None]
"""What to publish for an appended event: a message for the outbox, or None for nothing."""


def publish_on(topic: str, *, key: Callable[[RecordedEvent], str] | None = None) -> Publication:
    """Publish every event on ``topic``, its data as the JSON payload, keyed by ``key(event)``
    (by default its stream: a consumer then gets each stream's events in order)."""

    def message(event: RecordedEvent) -> Message:
        return Message(
            topic=topic,
            key=event.stream_id if key is None else key(event),
            event_type=event.event_type,
            schema_version=event.schema_version,
            payload=json.dumps(event.data, separators=(",", ":"), ensure_ascii=False).encode(),
            message_id=event.event_id,
            causation_id=event.causation_id,
            correlation_id=event.correlation_id,
        )

    return message


class EventStore:
    """The streams of one service's database, seen from one transaction.

    With an ``outbox`` (the unit of work's), every appended event for which ``publish``
    gives a message is added to it, hence published if, and only if, the append commits.
    """

    def __init__(
        self,
        session: AsyncSession,
        *,
        outbox: Outbox | None = None,
        publish: Publication | None = None,
    ) -> None:
        if publish is not None and outbox is None:
            raise ValueError("publishing appended events needs the unit of work's outbox")
        self._session = session
        self._outbox = outbox
        self._publish = publish

    async def append(
        self, stream_id: str, expected_version: int, new_events: Sequence[NewEvent]
    ) -> list[RecordedEvent]:
        """Append ``new_events`` to a stream that holds ``expected_version`` events (0: a new one).

        Raises ConcurrencyConflict if the stream holds any other number of events by now.
        """
        if not 0 < len(stream_id) <= STREAM_ID_MAX_LENGTH:
            raise ValueError(f"a stream id has 1-{STREAM_ID_MAX_LENGTH} characters")
        if expected_version < 0:
            raise ValueError("expected_version counts events: it cannot be negative")
        if not new_events:
            return []
        version = expected_version + len(new_events)
        if not await self._move_stream(stream_id, expected_version, version):
            raise ConcurrencyConflict(stream_id, expected_version)
        now = dt.datetime.now(dt.UTC)
        recorded = [
            RecordedEvent(
                stream_id=stream_id,
                version=expected_version + n,
                event_type=event.event_type,
                schema_version=event.schema_version,
                data=event.data,
                event_id=event.event_id,
                recorded_at=now,
                causation_id=event.causation_id,
                correlation_id=event.correlation_id,
            )
            for n, event in enumerate(new_events, 1)
        ]
        await self._session.execute(
            insert(events),
            [
                {
                    "stream_id": event.stream_id,
                    "version": event.version,
                    "event_id": event.event_id,
                    "event_type": event.event_type,
                    "schema_version": event.schema_version,
                    "data": dict(event.data),
                    "causation_id": event.causation_id,
                    "correlation_id": event.correlation_id,
                    "recorded_at": event.recorded_at,
                }
                for event in recorded
            ],
        )
        if self._publish is not None and self._outbox is not None:
            for event in recorded:
                message = self._publish(event)
                if message is not None:
                    self._outbox.add(message)
        return recorded

    async def load(self, stream_id: str, *, after: int = 0) -> list[RecordedEvent]:
        """The stream's events after version ``after``, in order (none for an unknown stream)."""
        query = (
            select(events)
            .where(events.c.stream_id == stream_id, events.c.version > after)
            .order_by(events.c.version)
        )
        rows = (await self._session.execute(query)).mappings().all()
        return [_recorded(row) for row in rows]

    async def version(self, stream_id: str) -> int:
        """How many events the stream holds (0 for an unknown stream)."""
        query = select(streams.c.version).where(streams.c.stream_id == stream_id)
        found = (await self._session.execute(query)).scalar_one_or_none()
        return int(found or 0)

    async def find(self, event_id: str) -> RecordedEvent | None:
        """The event with this id, in whichever stream, or None."""
        query = select(events).where(events.c.event_id == event_id)
        row = (await self._session.execute(query)).mappings().one_or_none()
        return None if row is None else _recorded(row)

    async def save_snapshot(self, snapshot: Snapshot) -> None:
        """Keep ``snapshot`` (in this transaction: it commits with the events it folds)."""
        await self._session.execute(
            insert(snapshots).values(
                stream_id=snapshot.stream_id,
                format=snapshot.format,
                version=snapshot.version,
                state=dict(snapshot.state),
                taken_at=dt.datetime.now(dt.UTC),
            )
        )

    async def latest_snapshot(self, stream_id: str, *, format: int) -> Snapshot | None:  # noqa: A002
        """The newest snapshot of the stream in ``format``; those in other formats are ignored."""
        query = (
            select(snapshots.c.version, snapshots.c.state)
            .where(snapshots.c.stream_id == stream_id, snapshots.c.format == format)
            .order_by(snapshots.c.version.desc())
            .limit(1)
        )
        row = (await self._session.execute(query)).one_or_none()
        if row is None:
            return None
        return Snapshot(stream_id=stream_id, version=row.version, format=format, state=row.state)

    async def _move_stream(self, stream_id: str, expected: int, version: int) -> bool:
        """Set the stream's version from ``expected`` to ``version``; False if it is not there.

        On PostgreSQL a second writer's UPDATE waits for the first's row lock, then finds the
        version moved; on SQLite writers take turns for the whole database. Either way exactly
        one of two writers who read the same version moves it, and neither gets an error.
        """
        if expected == 0:
            dialect = self._session.get_bind().dialect.name
            create = postgresql.insert if dialect == "postgresql" else sqlite.insert
            statement = (
                create(streams)
                .values(stream_id=stream_id, version=version)
                .on_conflict_do_nothing(index_elements=[streams.c.stream_id])
                .returning(streams.c.stream_id)
            )
            return (await self._session.execute(statement)).first() is not None
        moved = (
            update(streams)
            .where(streams.c.stream_id == stream_id, streams.c.version == expected)
            .values(version=version)
            .returning(streams.c.stream_id)
        )
        return (await self._session.execute(moved)).first() is not None


def _recorded(row: RowMapping) -> RecordedEvent:
    recorded_at: dt.datetime = row["recorded_at"]
    if recorded_at.tzinfo is None:  # SQLite keeps no zone; what was written is UTC
        recorded_at = recorded_at.replace(tzinfo=dt.UTC)
    return RecordedEvent(
        stream_id=row["stream_id"],
        version=row["version"],
        event_type=row["event_type"],
        schema_version=row["schema_version"],
        data=row["data"],
        event_id=row["event_id"],
        recorded_at=recorded_at,
        causation_id=row["causation_id"],
        correlation_id=row["correlation_id"],
    )
