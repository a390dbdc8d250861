"""Transactional outbox: events are written in the transaction that changes the state, and a
relay publishes them afterwards.

A crash between the commit and the publish loses nothing: the rows stay until the broker has
confirmed them. A crash between the publish and marking them sent publishes them again, which
the consumers' inboxes absorb (at-least-once, effectively once).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import math
import time
import weakref
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from chassis.logs import get_logger
from chassis.messaging.bus import BrokerUnavailableError
from chassis.messaging.message import WRITTEN_AT, Message, check_name
from chassis.messaging.tables import outbox, outbox_relay_lease
from chassis.messaging.telemetry import (
    outbox_published,
    outbox_waiting,
    produced_trace_context,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy import Row
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from chassis.messaging.bus import MessageBus

_log = get_logger("chassis.messaging.outbox")

# The relays of this process, woken when a transaction with outbox rows commits.
_relays: weakref.WeakSet[OutboxRelay] = weakref.WeakSet()


class Event(Protocol):
    """What an event schema of ``contracts`` offers for publishing."""

    @property
    def event_type(self) -> str: ...

    @property
    def schema_version(self) -> int: ...

    def to_json(self) -> bytes: ...


class Outbox:
    """The outbox of one transaction: what is added is written when the transaction commits."""

    def __init__(self) -> None:
        self._pending: list[Message] = []

    @property
    def pending(self) -> tuple[Message, ...]:
        """What was added and not yet written (fakes of a unit of work show it to tests)."""
        return tuple(self._pending)

    def add(self, message: Message) -> None:
        """Publish ``message`` once this transaction commits (and only if it does)."""
        check_name("topic", message.topic)
        if not message.trace_context:  # carry the trace of the request that caused the event
            message = dataclasses.replace(message, trace_context=produced_trace_context(message))
        self._pending.append(message)

    def add_event(
        self,
        topic: str,
        key: str,
        event: Event,
        *,
        causation_id: str | None = None,
        correlation_id: str | None = None,
        message_id: str | None = None,
    ) -> None:
        """Publish ``event`` (a ``contracts`` event) on ``topic`` under ``key`` once committed.

        ``message_id``: the id of what caused it (a stored event's id), so that a consumer's
        inbox knows the message again if it is ever published twice; a new one by default.
        """
        message = Message(
            topic=topic,
            key=key,
            event_type=event.event_type,
            schema_version=event.schema_version,
            payload=event.to_json(),
            causation_id=causation_id,
            correlation_id=correlation_id,
        )
        if message_id is not None:
            message = dataclasses.replace(message, message_id=message_id)
        self.add(message)

    async def write(self, session: AsyncSession) -> bool:
        """Insert what was added into ``session``'s transaction; whether there was anything."""
        if not self._pending:
            return False
        now = dt.datetime.now(dt.UTC)
        written_at = f"{now.timestamp():.6f}"
        messages, self._pending = self._pending, []
        rows = [
            {
                "message_id": m.message_id,
                "topic": m.topic,
                "key": m.key,
                "event_type": m.event_type,
                "schema_version": m.schema_version,
                "payload": m.payload,
                "headers": {WRITTEN_AT: written_at, **m.headers()},
                "created_at": now,
            }
            for m in messages
        ]
        await session.execute(insert(outbox), rows)
        return True


def committed() -> None:
    """Tell this process's relays that outbox rows were committed (no waiting for a poll)."""
    for relay in list(_relays):
        relay.wake()


class OutboxRelay:
    """Publishes committed outbox rows in order and marks them sent.

    Several replicas of a service share one database: a lease row elects one relay at a time,
    so rows go out in the order they were written. A relay whose broker is down keeps the
    rows and tries again; nothing is dropped.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        bus: MessageBus,
        *,
        holder: str,
        batch_size: int = 200,
        poll_interval: float = 1.0,
        lease_seconds: float = 15.0,
        keep_sent: dt.timedelta = dt.timedelta(hours=1),
    ) -> None:
        self._sessionmaker = sessionmaker
        self._bus = bus
        self._holder = holder
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._lease = dt.timedelta(seconds=lease_seconds)
        self._keep_sent = keep_sent
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_cleanup = dt.datetime.min.replace(tzinfo=dt.UTC)
        self._fresh_until = -math.inf
        self.published = 0

    def wake(self) -> None:
        """Look for new rows now rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        """Run the relay in the background until :meth:`stop`."""
        _relays.add(self)
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        """Stop relaying; what is unsent stays in the outbox for the next relay."""
        _relays.discard(self)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        delay = self._poll_interval
        while True:
            self._wake.clear()  # before looking: a commit during the pass wakes the next one
            try:
                sent = await self.relay_once()
                delay = self._poll_interval
            except BrokerUnavailableError as error:
                _log.warning("broker unavailable; outbox rows kept", error=str(error))
                sent, delay = 0, min(delay * 2, 10 * self._poll_interval)
            except Exception:  # noqa: BLE001 - the relay must outlive a bad moment (a locked DB)
                _log.warning("outbox relay failed; trying again", exc_info=True)
                sent, delay = 0, min(delay * 2, 10 * self._poll_interval)
            if sent == self._batch_size:
                continue  # more are waiting
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    async def relay_once(self) -> int:
        """Publish one batch of unsent rows if this relay holds the lease; how many it sent.

        A pass that works costs one read, one publish and one write (marking the rows sent):
        the lease is written only when less than half of it is left, not on every pass.
        """
        if not self._lease_is_fresh():
            # Looking first keeps an idle relay from writing; the lease is taken only for
            # work, and the rows are read again under it (the last holder may have sent them).
            if not await self._unsent(limit=1):
                outbox_waiting(None)
                await self._forget_sent()
                return 0
            if not await self._hold_lease():
                return 0
        rows = await self._unsent(limit=self._batch_size)
        outbox_waiting(rows[0].created_at if rows else None)
        if not rows:
            await self._forget_sent()
            return 0
        await self._bus.publish(
            [Message.from_headers(row.topic, row.headers, row.payload) for row in rows]
        )
        async with self._sessionmaker() as session:
            await session.execute(
                update(outbox)
                .where(outbox.c.id.in_([row.id for row in rows]))
                .values(sent_at=dt.datetime.now(dt.UTC))
            )
            await session.commit()
        self.published += len(rows)
        outbox_published(row.topic for row in rows)
        if len(rows) < self._batch_size:
            outbox_waiting(None)  # the whole backlog went out
        return len(rows)

    def _lease_is_fresh(self) -> bool:
        """Whether this relay renewed its lease less than half a lease ago (so it holds it)."""
        return time.monotonic() < self._fresh_until

    async def _unsent(self, *, limit: int) -> Sequence[Row[int, str, bytes, Any, dt.datetime]]:
        async with self._sessionmaker() as session:
            query = (
                select(
                    outbox.c.id,
                    outbox.c.topic,
                    outbox.c.payload,
                    outbox.c.headers,
                    outbox.c.created_at,
                )
                .where(outbox.c.sent_at.is_(None))
                .order_by(outbox.c.id)
                .limit(limit)
            )
            return (await session.execute(query)).all()

    async def _hold_lease(self) -> bool:
        now = dt.datetime.now(dt.UTC)
        values = {"holder": self._holder, "expires_at": now + self._lease}
        async with self._sessionmaker() as session:
            taken = await session.execute(
                update(outbox_relay_lease)
                .where(outbox_relay_lease.c.name == "relay")
                .where(
                    or_(
                        outbox_relay_lease.c.holder == self._holder,
                        outbox_relay_lease.c.expires_at < now,
                    )
                )
                .values(**values)
            )
            if taken.rowcount == 0:  # type: ignore[attr-defined]
                try:
                    await session.execute(insert(outbox_relay_lease).values(name="relay", **values))
                except IntegrityError:
                    return False  # another relay holds it
            await session.commit()
        # Nobody else takes the lease before it expires: half of it is left to spare.
        self._fresh_until = time.monotonic() + self._lease.total_seconds() / 2
        return True

    async def _forget_sent(self) -> None:
        now = dt.datetime.now(dt.UTC)
        if now - self._last_cleanup < self._keep_sent / 10:
            return
        self._last_cleanup = now
        cutoff = now - self._keep_sent
        async with self._sessionmaker() as session:
            await session.execute(delete(outbox).where(outbox.c.sent_at < cutoff))
            await session.commit()
