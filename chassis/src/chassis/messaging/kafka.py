"""The bus on a Kafka-protocol broker (Apache Kafka, Redpanda, Tansu, ...) through aiokafka.

A topic is the Kafka topic ``<namespace>.<topic>`` with ``partitions`` partitions, created on
first use; the producer picks each message's partition itself (``partition_for``), with
``acks=all``, and ``publish`` waits for every delivery report. A group is the consumer group
``<namespace>.<group>``: Kafka shares a topic's partitions among the group's consumers and
gives every group every message.

A subscription handles each of its partitions one message at a time, at most ``concurrency``
partitions at once, and pauses a partition while it has fetched messages still to handle, so
it never holds more than one fetch per partition. Offsets are committed explicitly, per
partition, only for messages whose ``dispatch`` returned: in the background shortly after,
when the group rebalances (the partitions it loses are committed before they are given up)
and on stop. A message that was being handled when its partition was taken away is not
committed; the partition's next owner delivers it again.

Kafka keeps no per-message delivery count, so ``Delivery.attempt`` restarts at 1 whenever a
message is delivered again after a consumer stopped or died, or after a rebalance: a message
that kills its consumer every time is redelivered for ever rather than dead-lettered. Attempts
counted by ``dispatch`` inside one consumer (handler errors and timeouts) do reach the dead
letters as on every other broker. When ``dispatch`` itself fails (the dead-letter sink is
down), the partition is fetched again from that message, whose attempts then start over.

Idempotent producing is off: Tansu (the broker the tests use) answers InitProducerId with an
error. Order is still kept, as aiokafka sends at most one batch per partition at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # type: ignore[import-untyped]
from aiokafka.abc import ConsumerRebalanceListener  # type: ignore[import-untyped]
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]
from aiokafka.errors import (  # type: ignore[import-untyped]
    ConsumerStoppedError,
    IllegalStateError,
    KafkaError,
)

from chassis.logs import get_logger
from chassis.messaging.bus import (
    DEFAULT_PARTITIONS,
    BrokerUnavailableError,
    DeadLetterSink,
    Handler,
    SubscribeOptions,
)
from chassis.messaging.dispatch import dispatch
from chassis.messaging.message import (
    Delivery,
    MalformedMessageError,
    Message,
    check_name,
    partition_for,
)

_log = get_logger("chassis.messaging.kafka")

CONFIRM_TIMEOUT = 5.0
"""Seconds the broker has to confirm a request (publish, commit, topic creation, joining)."""
JOIN_TIMEOUT = 30.0
"""Seconds a new consumer may wait for the group to give it its partitions."""
SESSION_TIMEOUT_MS = 2000
"""A consumer silent this long is dropped from its group and its partitions reassigned."""
HEARTBEAT_INTERVAL_MS = 300
REBALANCE_TIMEOUT_MS = 10_000
REVOKE_GRACE = 5.0
"""Seconds a rebalance waits for the messages in flight on the partitions it takes away."""
COMMIT_INTERVAL = 0.2
"""Seconds between background commits, so a burst costs a few commits, not one per message."""
FETCH_WAIT_MS = 100
"""How long a fetch waits for data: a resumed partition is fetched again after at most this."""
PARTITION_FETCH_BYTES = 256 * 1024
"""The most one fetch brings of one partition: the bound on what a subscription buffers."""
_TOPIC_EXISTS = 36


def _unavailable(what: str, error: BaseException) -> BrokerUnavailableError:
    reason = "no answer in time" if isinstance(error, TimeoutError) else f"{error!r}"
    return BrokerUnavailableError(f"Kafka: {what} failed: {reason}")


async def _close_quietly(closing: Awaitable[None]) -> None:
    """Await a client's ``stop()`` or ``close()``, bounded in time, whatever the broker's state."""
    try:
        with contextlib.suppress(KafkaError, OSError, TimeoutError):
            async with asyncio.timeout(CONFIRM_TIMEOUT):
                await closing
    except asyncio.CancelledError:
        # With the broker away, aiokafka's consumer lets the cancellation of its own fetch
        # retry escape stop(); only a cancellation of this task itself must go on.
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise


class KafkaBus:
    """A connection to a Kafka-protocol broker; see the module docstring."""

    def __init__(
        self, url: str, *, partitions: int = DEFAULT_PARTITIONS, namespace: str = "souk"
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "kafka" or not parts.netloc:
            raise ValueError(f"not a Kafka URL: {url!r} (kafka://host:port[,host:port])")
        if partitions < 1:
            raise ValueError("partitions must be >= 1")
        self.partitions = partitions
        self._servers = parts.netloc.split(",")
        self._namespace = namespace
        self._producer: Any = None
        self._admin: Any = None
        self._topics: set[str] = set()
        self._subscriptions: set[KafkaSubscription] = set()
        self._closed = False

    def _name(self, name: str) -> str:
        return f"{self._namespace}.{name}"

    async def start(self) -> None:
        """Connect; raise :class:`BrokerUnavailableError` if the broker cannot be reached."""
        producer = AIOKafkaProducer(
            bootstrap_servers=self._servers,
            acks="all",
            enable_idempotence=False,
            request_timeout_ms=int(CONFIRM_TIMEOUT * 1000),
        )
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self._servers, request_timeout_ms=int(CONFIRM_TIMEOUT * 1000)
        )
        try:
            async with asyncio.timeout(CONFIRM_TIMEOUT * 2):
                await producer.start()
                await admin.start()
        except (KafkaError, OSError, TimeoutError) as error:
            await _close_quietly(producer.stop())
            await _close_quietly(admin.close())
            raise _unavailable(f"connecting to {','.join(self._servers)}", error) from error
        self._producer, self._admin = producer, admin

    async def close(self, grace: float = 10.0) -> None:
        """Stop every subscription (see :meth:`KafkaSubscription.stop`) and disconnect."""
        if self._closed:
            return
        self._closed = True
        await asyncio.gather(*(s.stop(grace) for s in list(self._subscriptions)))
        producer, admin, self._producer, self._admin = self._producer, self._admin, None, None
        if producer is not None:
            await _close_quietly(producer.stop())
        if admin is not None:
            await _close_quietly(admin.close())

    def _started(self) -> tuple[Any, Any]:
        if self._producer is None or self._closed:
            raise RuntimeError("the bus is not started (await bus.start()) or already closed")
        return self._producer, self._admin

    async def publish(self, messages: Sequence[Message]) -> None:
        """Hand ``messages`` to the broker; return once it confirmed all of them, in order."""
        if not messages:
            return
        producer, _ = self._started()
        topics = {check_name("topic", m.topic) for m in messages}
        try:
            async with asyncio.timeout(CONFIRM_TIMEOUT):
                await self._ensure_topics(topics)
                confirmations = [
                    await producer.send(
                        self._name(m.topic),
                        m.payload,
                        key=m.key.encode(),
                        partition=partition_for(m.key, self.partitions),
                        headers=[(k, v.encode()) for k, v in m.headers().items()],
                    )
                    for m in messages
                ]
                # asyncio.wait, unlike gather, leaves the producer's futures alone on timeout.
                await asyncio.wait(confirmations)
            for confirmation in confirmations:
                confirmation.result()
        except (KafkaError, OSError, TimeoutError) as error:
            self._topics -= topics  # lost with the broker's memory? create them again next time
            raise _unavailable(f"publishing {len(messages)} message(s)", error) from error

    async def _ensure_topics(self, topics: Iterable[str]) -> None:
        missing = [t for t in topics if t not in self._topics]
        if not missing:
            return
        _, admin = self._started()
        new = [NewTopic(self._name(t), self.partitions, 1) for t in missing]
        response = await admin.create_topics(new)
        for name, code, text in response.topic_errors:
            if code == _TOPIC_EXISTS:
                await self._check_partitions(name)
            elif code != 0:
                raise BrokerUnavailableError(f"Kafka: creating topic {name} failed: {text}")
        self._topics.update(missing)

    async def _check_partitions(self, name: str) -> None:
        _, admin = self._started()
        [described] = await admin.describe_topics([name])
        found = len(described["partitions"])
        if found != self.partitions:
            raise ValueError(
                f"Kafka topic {name} has {found} partitions, the bus URL says {self.partitions}"
            )

    async def subscribe(
        self,
        topic: str,
        group: str,
        handler: Handler,
        *,
        dead_letters: DeadLetterSink,
        options: SubscribeOptions = SubscribeOptions(),  # noqa: B008 - frozen, so safe to share
    ) -> KafkaSubscription:
        """Join ``group`` on ``topic``; return once the group gave this consumer its partitions."""
        self._started()
        check_name("topic", topic)
        check_name("group", group)
        try:
            async with asyncio.timeout(CONFIRM_TIMEOUT):
                await self._ensure_topics([topic])
        except (KafkaError, OSError, TimeoutError) as error:
            raise _unavailable(f"creating topic {topic}", error) from error
        subscription = KafkaSubscription(
            self._servers,
            topic,
            group,
            handler,
            dead_letters=dead_letters,
            options=options,
            namespace=self._namespace,
            forget=self._subscriptions.discard,
        )
        await subscription.start()
        self._subscriptions.add(subscription)
        return subscription


@dataclass(eq=False)
class _Partition:
    """A partition this consumer owns: its fetched, unhandled records and its offsets."""

    tp: Any
    backlog: deque[Any] = field(default_factory=deque)
    worker: asyncio.Task[None] | None = None
    handled: int | None = None
    """The offset after the last message handled, to commit."""
    committed: int | None = None


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, subscription: KafkaSubscription) -> None:
        self._subscription = subscription

    async def on_partitions_revoked(self, revoked: set[Any]) -> None:
        await self._subscription.give_up(revoked)

    async def on_partitions_assigned(self, assigned: set[Any]) -> None:
        self._subscription.take(assigned)


class KafkaSubscription:
    """One consumer of a group; see the module docstring."""

    def __init__(
        self,
        servers: list[str],
        topic: str,
        group: str,
        handler: Handler,
        *,
        dead_letters: DeadLetterSink,
        options: SubscribeOptions,
        namespace: str,
        forget: Callable[[KafkaSubscription], None],
    ) -> None:
        self._topic = topic
        self._group = group
        self._handler = handler
        self._dead_letters = dead_letters
        self._options = options
        self._forget = forget
        self._slots = asyncio.Semaphore(options.concurrency)
        self._partitions: dict[Any, _Partition] = {}
        self._dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = False
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=servers,
            group_id=f"{namespace}.{group}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
            rebalance_timeout_ms=REBALANCE_TIMEOUT_MS,
            request_timeout_ms=int(CONFIRM_TIMEOUT * 1000),
            fetch_max_wait_ms=FETCH_WAIT_MS,
            max_partition_fetch_bytes=PARTITION_FETCH_BYTES,
            fetch_max_bytes=4 * 1024 * 1024,
        )
        self._consumer.subscribe([f"{namespace}.{topic}"], listener=_Rebalance(self))

    async def start(self) -> None:
        """Join the group (blocking until it assigned partitions) and start consuming."""
        try:
            async with asyncio.timeout(JOIN_TIMEOUT):
                await self._consumer.start()
        except (KafkaError, OSError, TimeoutError) as error:
            await _close_quietly(self._consumer.stop())
            raise _unavailable(f"joining group {self._group} on {self._topic}", error) from error
        self._tasks = [
            asyncio.create_task(self._fetch(), name=f"kafka fetch {self._topic}"),
            asyncio.create_task(self._commit_now_and_then(), name=f"kafka commit {self._topic}"),
        ]

    async def stop(self, grace: float = 10.0) -> None:
        """Stop fetching, give handlers ``grace`` seconds, commit what was handled, leave."""
        if self._stopped:
            return
        self._stopped = True
        self._forget(self)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._finish(list(self._partitions.values()), grace)
        coordinator = self._consumer._coordinator
        if coordinator is not None and coordinator.generation == 0:
            # Tansu numbers a group's first generation 0, which aiokafka takes for "never
            # joined" and so skips LeaveGroup: the partitions would then wait a whole session
            # timeout for their next owner. LeaveGroup does not carry the generation.
            coordinator.generation = 1
        await _close_quietly(self._consumer.stop())

    def take(self, assigned: Iterable[Any]) -> None:
        """Own ``assigned`` (the group's new assignment): fetching starts at their commits."""
        for tp in assigned:
            self._partitions[tp] = _Partition(tp)

    async def give_up(self, revoked: Iterable[Any]) -> None:
        """Finish (briefly) and commit the partitions the group takes away, then forget them."""
        leaving = [p for tp in revoked if (p := self._partitions.pop(tp, None)) is not None]
        await self._finish(leaving, REVOKE_GRACE)

    async def _finish(self, partitions: list[_Partition], grace: float) -> None:
        for partition in partitions:
            partition.backlog.clear()
        workers = [p.worker for p in partitions if p.worker is not None and not p.worker.done()]
        if workers:
            _, late = await asyncio.wait(workers, timeout=grace)
            for worker in late:
                worker.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self._commit(partitions)

    async def _fetch(self) -> None:
        while True:
            try:
                batches = await self._consumer.getmany(timeout_ms=1000)
            except ConsumerStoppedError:
                return
            except Exception as error:  # noqa: BLE001 - a subscription keeps consuming, come what may
                _log.warning(
                    "kafka fetch failed; trying again", topic=self._topic, error=repr(error)
                )
                await asyncio.sleep(0.5)
                continue
            for tp, records in batches.items():
                partition = self._partitions.get(tp)
                if partition is None:
                    continue
                partition.backlog.extend(records)
                with contextlib.suppress(IllegalStateError):  # no longer assigned: it is leaving
                    self._consumer.pause(tp)
                if partition.worker is None or partition.worker.done():
                    partition.worker = asyncio.create_task(self._work(partition))

    async def _work(self, partition: _Partition) -> None:
        while partition.backlog:
            async with self._slots:
                if not partition.backlog:
                    break
                record = partition.backlog.popleft()
                handled = await self._handle(record)
            if not handled:
                await self._deliver_again(partition, record.offset)
                return
            partition.handled = record.offset + 1
            self._dirty.set()
        self._resume(partition)

    async def _handle(self, record: Any) -> bool:
        """Dispatch ``record``; False if it must be delivered again (dispatch itself failed)."""
        try:
            headers = {name: (value or b"").decode() for name, value in record.headers}
            message = Message.from_headers(self._topic, headers, record.value or b"")
        except (MalformedMessageError, UnicodeDecodeError) as error:
            _log.error("skipping a malformed message", topic=self._topic, error=str(error))
            return True
        delivery = Delivery(message=message, group=self._group, partition=record.partition)
        try:
            await dispatch(self._handler, delivery, self._options, self._dead_letters)
        except Exception as error:  # noqa: BLE001 - e.g. the dead-letter sink is down
            _log.error(
                "message left unacknowledged; delivering it again",
                topic=self._topic,
                message_id=message.message_id,
                error=repr(error),
            )
            return False
        return True

    async def _deliver_again(self, partition: _Partition, offset: int) -> None:
        """Fetch ``partition`` again from ``offset`` after a pause: Kafka has no single nack."""
        partition.backlog.clear()
        await asyncio.sleep(self._options.max_retry_delay)
        if self._owns(partition):
            self._consumer.seek(partition.tp, offset)
            self._resume(partition)

    def _owns(self, partition: _Partition) -> bool:
        return self._partitions.get(partition.tp) is partition and not self._stopped

    def _resume(self, partition: _Partition) -> None:
        if self._owns(partition):
            with contextlib.suppress(IllegalStateError):
                self._consumer.resume(partition.tp)

    async def _commit_now_and_then(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            if not await self._commit(list(self._partitions.values())):
                self._dirty.set()
            await asyncio.sleep(COMMIT_INTERVAL)

    async def _commit(self, partitions: list[_Partition]) -> bool:
        """Commit what ``partitions`` handled; False if the broker refused or did not answer."""
        due = {p: p.handled for p in partitions if p.handled != p.committed}
        if not due:
            return True
        try:
            async with asyncio.timeout(CONFIRM_TIMEOUT):
                await self._consumer.commit({p.tp: offset for p, offset in due.items()})
        except (KafkaError, OSError, TimeoutError) as error:
            # The group moved on (a rebalance) or the broker is away: the partitions' next
            # owner, maybe this consumer again, starts from the last commit that succeeded.
            _log.info("kafka commit failed", topic=self._topic, error=repr(error))
            return False
        for partition, offset in due.items():
            partition.committed = offset
        return True
