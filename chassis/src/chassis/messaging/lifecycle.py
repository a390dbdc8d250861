"""A service's messaging at run time: its bus, its outbox relay, its consumers, its dead letters.

``chassis.create_app(..., messaging=Messaging(settings, consumers=[...]))`` starts it after
the migrations and stops it before the database closes. Each consumer subscribes as the
group named after the service, so the replicas of a service share its messages and every
service gets all of them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sqlalchemy import delete

from chassis.logs import get_logger
from chassis.messaging.brokers import connect
from chassis.messaging.bus import BrokerUnavailableError, Handler, SubscribeOptions
from chassis.messaging.dead_letters import DatabaseDeadLetters, StoredDeadLetter
from chassis.messaging.dispatch import describe
from chassis.messaging.message import Delivery, check_name, partition_for
from chassis.messaging.outbox import OutboxRelay
from chassis.messaging.tables import inbox

if TYPE_CHECKING:
    from chassis.db import Database
    from chassis.messaging.bus import MessageBus, Subscription
    from chassis.settings import ServiceSettings

_log = get_logger("chassis.messaging")


@dataclass(frozen=True, slots=True)
class Consumer:
    """A handler for the messages of ``topic``."""

    topic: str
    handler: Handler
    options: SubscribeOptions = field(default_factory=SubscribeOptions)


class ReplayError(Exception):
    """A dead letter could not be replayed: unknown, already replayed, or failed again."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class Messaging:
    """Connects a service to the bus: relays its outbox and runs its consumers."""

    def __init__(
        self,
        settings: ServiceSettings,
        consumers: Sequence[Consumer] = (),
        *,
        relay_outbox: bool = True,
        connect_retry: float = 1.0,
        keep_inbox: dt.timedelta = dt.timedelta(days=7),
    ) -> None:
        self.group = check_name("group", settings.service)
        self._settings = settings
        self._consumers = {check_name("topic", c.topic): c for c in consumers}
        self._relay_outbox = relay_outbox
        self._connect_retry = connect_retry
        self._keep_inbox = keep_inbox
        self._bus: MessageBus | None = None
        self._relay: OutboxRelay | None = None
        self._subscriptions: list[Subscription] = []
        self._connecting: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self.dead_letters: DatabaseDeadLetters | None = None

    async def start(self, database: Database) -> None:
        """Connect in the background (the broker may come up later); return at once."""
        self.dead_letters = DatabaseDeadLetters(database.sessionmaker)
        self._database = database
        self._connecting = asyncio.create_task(self._connect(), name="messaging-connect")

    async def stop(self, grace: float = 10.0) -> None:
        """Stop the relay and the consumers (unfinished messages go back), then disconnect."""
        if self._connecting is not None:
            self._connecting.cancel()
            # Whatever ended the task (even an error of its own) must not stop the shutdown.
            await asyncio.gather(self._connecting, return_exceptions=True)
        if self._relay is not None:
            await self._relay.stop()
        await asyncio.gather(*(s.stop(grace) for s in self._subscriptions))
        if self._bus is not None:
            await self._bus.close(grace)

    async def check(self) -> None:
        """Readiness: a service with consumers is ready once they are subscribed."""
        if self._consumers and not self._subscribed.is_set():
            raise RuntimeError("not yet subscribed to the message bus")

    async def _connect(self) -> None:
        while True:
            try:
                await self._connect_once()
            except BrokerUnavailableError as error:
                _log.warning("message bus unavailable; retrying", error=str(error))
            except Exception:  # noqa: BLE001 - a service must not stay unsubscribed for good
                _log.exception("connecting to the message bus failed; retrying")
            else:
                break
            await asyncio.sleep(self._connect_retry)
        _log.info(
            "message bus connected",
            broker=_without_secrets(self._settings.broker().url),
            consumers=sorted(self._consumers),
        )
        try:
            await self._forget_old_inbox()
        except Exception:  # noqa: BLE001 - housekeeping; the next start tries again
            _log.warning("could not forget old inbox rows", exc_info=True)

    async def _connect_once(self) -> None:
        bus = connect(self._settings.broker())
        subscriptions: list[Subscription] = []
        try:
            await bus.start()
            for consumer in self._consumers.values():
                subscription = await bus.subscribe(
                    consumer.topic,
                    self.group,
                    consumer.handler,
                    dead_letters=self._store(),
                    options=consumer.options,
                )
                subscriptions.append(subscription)  # stopped below if a later one fails
        except BaseException:
            await asyncio.gather(*(s.stop(0) for s in subscriptions), return_exceptions=True)
            await asyncio.gather(bus.close(0), return_exceptions=True)
            raise
        self._bus, self._subscriptions = bus, subscriptions
        if self._relay_outbox:
            self._relay = OutboxRelay(
                self._database.sessionmaker, bus, holder=self._settings.instance_id
            )
            self._relay.start()
        self._subscribed.set()

    async def _forget_old_inbox(self) -> None:
        # Redeliveries come within minutes, never days: older inbox rows only take room.
        cutoff = dt.datetime.now(dt.UTC) - self._keep_inbox
        async with self._database.sessionmaker() as session:
            await session.execute(delete(inbox).where(inbox.c.handled_at < cutoff))
            await session.commit()

    async def replay(self, dead_letter_id: int) -> StoredDeadLetter:
        """Hand dead letter ``dead_letter_id`` to its handler once more; ReplayError if it fails."""
        store = self._store()
        stored = await store.get(dead_letter_id)
        if stored is None:
            raise ReplayError("not-found", f"there is no dead letter {dead_letter_id}")
        if stored.replayed_at is not None:
            raise ReplayError("already-replayed", f"dead letter {dead_letter_id} was replayed")
        consumer = self._consumers.get(stored.message.topic)
        if consumer is None or stored.group != self.group:
            raise ReplayError(
                "no-handler",
                f"{self.group} has no handler for {stored.message.topic!r} as {stored.group!r}",
            )
        if not await store.claim(dead_letter_id):  # another replay took it meanwhile
            raise ReplayError("already-replayed", f"dead letter {dead_letter_id} was replayed")
        partitions = self._bus.partitions if self._bus is not None else 1
        delivery = Delivery(
            message=stored.message,
            group=stored.group,
            partition=partition_for(stored.message.key, partitions),
            attempt=stored.attempts + 1,
        )
        try:
            async with asyncio.timeout(consumer.options.handler_timeout):
                await consumer.handler(delivery)
        except Exception as error:
            await store.record_failure(dead_letter_id, describe(error))
            raise ReplayError("replay-failed", describe(error)) from error
        replayed = await store.get(dead_letter_id)
        if replayed is None:  # pragma: no cover - claimed rows are never deleted
            raise ReplayError("not-found", f"there is no dead letter {dead_letter_id}")
        return replayed

    def _store(self) -> DatabaseDeadLetters:
        if self.dead_letters is None:
            raise RuntimeError("messaging has not started")
        return self.dead_letters


def _without_secrets(url: str) -> str:
    """``url`` fit for a log line: no user, password or query."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"
