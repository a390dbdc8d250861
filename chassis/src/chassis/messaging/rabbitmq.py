"""The RabbitMQ adapter (aio-pika), for RabbitMQ 3.10 and later.

Layout, every name prefixed with the URL's namespace (``souk`` unless ``?namespace=``):

- one durable direct exchange per topic, ``<ns>.<topic>``; a message's routing key is its
  partition number (``partition_for(key, partitions)``);
- per (group, partition) one durable quorum queue ``<ns>.<topic>.<group>.<p>`` bound by that
  routing key, so every group gets every message (fan-out) and a partition keeps publish order.
  Quorum queues count deliveries: ``x-delivery-count`` seeds ``Delivery.attempt``, and after
  ``x-delivery-limit`` deliveries (a message that kills its consumer every time) the queue
  parks the message on the dead-letter exchange ``<ns>.dead-letters`` (queue of the same name);
- publisher confirms: ``publish`` sends the whole batch on one channel and awaits the confirms
  together (a channel keeps the order of its publishes).

Per-key order needs one consumer at a time per partition queue, and load sharing needs the
partitions spread over the group's consumers. On 3.10 single-active-consumer cannot spread
them: the first consumer to register becomes active on every queue, and a quorum queue
switches to a consumer of higher priority only since 4.0. Quorum queues also accept a second
"exclusive" consumer (only classic queues refuse it). So ownership is explicit:

- each partition has an *owner* queue ``<...>.<p>.owner`` (classic, never holds a message);
  a consumer owns the partition while it holds an exclusive consumer on it (the broker refuses
  a second one), and consumes the partition's quorum queue, prefetch 1, only while it does;
  lock and data consumer live on one channel, so a consumer that dies or is disconnected
  loses both at once and its unacknowledged message goes back to the head of the queue;
- each consumer also consumes the group's *members* queue, whose consumer count is the number
  of live consumers; every ``_TICK`` a consumer compares what it owns with its fair share
  (``ceil(partitions / members)``): above it, it hands back partitions (stop consuming, finish
  what it received, then close the channel, which releases the lock); below it, it takes
  partitions whose owner queue has no consumer. ``subscribe`` returns once this consumer got
  its share (or ``_SETTLE`` seconds passed), so a burst published right after is shared;
- the quorum queues also have single-active-consumer on, so even if a lock were handed over
  in a race, only one of two consumers of a partition would receive its messages.

A consumer so holds at most one unacknowledged message per partition it owns (prefetch 1) and
handles at most ``concurrency`` of them at once.

Each subscription has a connection of its own and reconnects by itself (plain connections,
not aio-pika's robust ones, which have reconnected without restoring consumers): on a lost
connection it cancels its handlers (their messages are redelivered), reconnects with backoff,
declares everything again and takes its share anew.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aio_pika
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from aiormq.exceptions import ChannelAccessRefused

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

if TYPE_CHECKING:
    from aio_pika.abc import (
        AbstractChannel,
        AbstractConnection,
        AbstractExchange,
        AbstractIncomingMessage,
        AbstractQueue,
    )

_log = get_logger("chassis.messaging.rabbitmq")

_BROKER_ERRORS = (TimeoutError, *CONNECTION_EXCEPTIONS)
_CONNECT_TIMEOUT = 5.0
_CONFIRM_TIMEOUT = 5.0
"""Seconds ``publish`` waits for the broker's confirms before it gives up."""
_TICK = 0.25
"""Seconds between two looks at the group's members (and at the connection)."""
_SETTLE = 5.0
"""Seconds ``subscribe`` waits at most for the group's other consumers to hand over partitions."""
_MAX_PROBE_DELAY = 2.0
_MAX_RECONNECT_DELAY = 2.0
_DELIVERY_LIMIT = 50
"""Deliveries of one message before the quorum queue parks it on the dead-letter exchange.

Handler failures are retried inside the consumer (``dispatch``); only deliveries that ended
without an acknowledgement (a consumer that died or stopped) count here, so this is well above
any sensible ``max_attempts``. One constant: a queue's arguments cannot change once declared.
"""


def client_url(url: str) -> str:
    """``url`` without the query parameters that belong to the bus, not to the AMQP client."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("partitions", "namespace")]
    return urlunsplit(parts._replace(query=urlencode(query)))


class Names:
    """The broker-side names of a namespace."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.dead_letters = f"{namespace}.dead-letters"

    def exchange(self, topic: str) -> str:
        """The exchange ``topic`` is published to."""
        return f"{self.namespace}.{topic}"

    def queue(self, topic: str, group: str, partition: int) -> str:
        """The quorum queue holding ``group``'s messages of one partition."""
        return f"{self.namespace}.{topic}.{group}.{partition}"

    def owner(self, topic: str, group: str, partition: int) -> str:
        """The queue whose exclusive consumer owns the partition."""
        return f"{self.queue(topic, group, partition)}.owner"

    def members(self, topic: str, group: str) -> str:
        """The queue whose consumers are the group's live consumers."""
        return f"{self.namespace}.{topic}.{group}.members"


class RabbitMqBus:
    """A :class:`~chassis.messaging.bus.MessageBus` on RabbitMQ; see the module docstring."""

    def __init__(
        self, url: str, *, partitions: int = DEFAULT_PARTITIONS, namespace: str = "souk"
    ) -> None:
        if partitions < 1:
            raise ValueError("partitions must be >= 1")
        self.partitions = partitions
        self._url = client_url(url)
        self._names = Names(namespace)
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}
        self._connecting = asyncio.Lock()
        self._subscriptions: list[RabbitMqSubscription] = []
        self._closed = False

    async def start(self) -> None:
        """Connect; raise :class:`BrokerUnavailableError` if the broker cannot be reached."""
        await self._publishing_channel()

    async def close(self, grace: float = 10.0) -> None:
        """Stop every subscription, then disconnect; idempotent."""
        self._closed = True
        await asyncio.gather(*(s.stop(grace) for s in self._subscriptions))
        await self._disconnect()

    async def publish(self, messages: Sequence[Message]) -> None:
        """Send ``messages`` on one channel and return once the broker confirmed them all."""
        if self._closed:
            raise RuntimeError("the bus is closed")
        if not messages:
            return
        try:
            async with asyncio.timeout(_CONFIRM_TIMEOUT):
                channel = await self._publishing_channel()
                topics = {m.topic for m in messages}
                exchanges = {t: await self._exchange(channel, t) for t in topics}
                # One channel publishes in call order; the confirms are awaited all together.
                await asyncio.gather(
                    *(
                        exchanges[m.topic].publish(
                            _amqp_message(m),
                            routing_key=str(partition_for(m.key, self.partitions)),
                            mandatory=False,
                        )
                        for m in messages
                    )
                )
        except BrokerUnavailableError:
            raise
        except _BROKER_ERRORS as error:
            await self._disconnect()
            raise BrokerUnavailableError(
                f"RabbitMQ did not confirm the messages: {error}"
            ) from error

    async def subscribe(
        self,
        topic: str,
        group: str,
        handler: Handler,
        *,
        dead_letters: DeadLetterSink,
        options: SubscribeOptions = SubscribeOptions(),  # noqa: B008 - frozen, so safe to share
    ) -> RabbitMqSubscription:
        """Join ``group`` on ``topic``; return once this consumer holds its share of partitions."""
        if self._closed:
            raise RuntimeError("the bus is closed")
        subscription = RabbitMqSubscription(
            self._url,
            self._names,
            Route(check_name("topic", topic), check_name("group", group), self.partitions),
            handler,
            dead_letters=dead_letters,
            options=options,
        )
        await subscription.open()
        self._subscriptions.append(subscription)
        return subscription

    async def _publishing_channel(self) -> AbstractChannel:
        async with self._connecting:
            if self._channel is not None and not self._channel.is_closed:
                return self._channel
            await self._disconnect()
            self._connection = await _open_connection(self._url)
            try:
                self._channel = await self._connection.channel(publisher_confirms=True)
            except _BROKER_ERRORS as error:
                await self._disconnect()
                raise BrokerUnavailableError(f"RabbitMQ is unavailable: {error}") from error
            return self._channel

    async def _exchange(self, channel: AbstractChannel, topic: str) -> AbstractExchange:
        exchange = self._exchanges.get(topic)
        if exchange is None:
            exchange = await _declare_exchange(
                channel, self._names.exchange(check_name("topic", topic))
            )
            self._exchanges[topic] = exchange
        return exchange

    async def _disconnect(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        self._exchanges.clear()
        if connection is not None:
            await _close_quietly(connection.close())


@dataclass(frozen=True, slots=True)
class Route:
    """Where a subscription reads: a topic, a group and the number of partitions."""

    topic: str
    group: str
    partitions: int


class _Partition:
    """A partition this consumer owns: one channel holds its owner lock and its data consumer."""

    def __init__(self, number: int, channel: AbstractChannel, queue: AbstractQueue) -> None:
        self.number = number
        self.channel = channel
        self.queue = queue
        self.inbox: asyncio.Queue[AbstractIncomingMessage | None] = asyncio.Queue()
        self.consumer_tag = ""
        self.task: asyncio.Task[None] | None = None
        self.busy = False
        self.releasing = False
        self.leaving = False

    async def receive(self, message: AbstractIncomingMessage) -> None:
        self.inbox.put_nowait(message)

    async def stop_receiving(self) -> None:
        """Cancel the data consumer; ``None`` in the inbox marks the end of what it received."""
        try:
            async with asyncio.timeout(_CONNECT_TIMEOUT):
                await self.queue.cancel(self.consumer_tag)
        finally:
            self.inbox.put_nowait(None)


class RabbitMqSubscription:
    """One consumer of a group: owns a fair share of the partitions, handles them, reconnects."""

    def __init__(
        self,
        url: str,
        names: Names,
        route: Route,
        handler: Handler,
        *,
        dead_letters: DeadLetterSink,
        options: SubscribeOptions,
    ) -> None:
        self._url = url
        self._names = names
        self._route = route
        self._handler = handler
        self._dead_letters = dead_letters
        self._options = options
        self._slots = asyncio.Semaphore(options.concurrency)
        self._connection: AbstractConnection | None = None
        self._control: AbstractChannel | None = None
        self._owned: dict[int, _Partition] = {}
        self._releases: set[asyncio.Task[None]] = set()
        self._supervisor: asyncio.Task[None] | None = None
        self._members = 0
        self._probe_delay = 0.0
        self._next_probe = 0.0
        self._settled = False
        self._stopped = False
        self._first = random.randrange(route.partitions)  # noqa: S311 - spreads contention only

    async def open(self) -> None:
        """Connect, take this consumer's share of the partitions, and keep it in the background."""
        try:
            await self._connect()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + _SETTLE
            while True:
                await self._rebalance(probe=True)
                if self._settled or loop.time() >= deadline:
                    break
                await asyncio.sleep(_TICK)
        except (BrokerUnavailableError, *_BROKER_ERRORS) as error:
            await self._drop()
            raise BrokerUnavailableError(f"RabbitMQ is unavailable: {error}") from error
        self._supervisor = asyncio.create_task(self._supervise())

    async def stop(self, grace: float = 10.0) -> None:
        """Stop consuming; give handlers ``grace`` seconds, then leave their messages unacked."""
        if self._stopped:
            return
        self._stopped = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.wait([self._supervisor])
        parts = list(self._owned.values())
        for part in parts:
            part.leaving = True
        await asyncio.gather(
            *(p.stop_receiving() for p in parts if not p.releasing), return_exceptions=True
        )
        tasks = [p.task for p in parts if p.task is not None]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.wait(tasks)
        if self._releases:
            await asyncio.wait(self._releases)
        await self._drop()

    async def _connect(self) -> None:
        connection = await _open_connection(self._url)
        try:
            control = await connection.channel(publisher_confirms=False)
            await self._declare(control)
            members = await control.get_queue(
                self._names.members(self._route.topic, self._route.group), ensure=False
            )
            await members.consume(_ignore, no_ack=True)
        except BaseException:
            await _close_quietly(connection.close())
            raise
        self._connection, self._control = connection, control

    async def _declare(self, channel: AbstractChannel) -> None:
        names, route = self._names, self._route
        dead_letters = await channel.declare_exchange(
            names.dead_letters, aio_pika.ExchangeType.FANOUT, durable=True
        )
        parked = await channel.declare_queue(
            names.dead_letters, durable=True, arguments={"x-queue-type": "quorum"}
        )
        await parked.bind(dead_letters)
        exchange = await _declare_exchange(channel, names.exchange(route.topic))
        for number in range(route.partitions):
            queue = await channel.declare_queue(
                names.queue(route.topic, route.group, number),
                durable=True,
                arguments={
                    "x-queue-type": "quorum",
                    "x-single-active-consumer": True,
                    "x-delivery-limit": _DELIVERY_LIMIT,
                    "x-dead-letter-exchange": names.dead_letters,
                },
            )
            await queue.bind(exchange, routing_key=str(number))
            await channel.declare_queue(names.owner(route.topic, route.group, number), durable=True)
        await channel.declare_queue(names.members(route.topic, route.group), durable=True)

    async def _supervise(self) -> None:
        while True:
            await asyncio.sleep(_TICK)
            try:
                async with asyncio.timeout(_CONNECT_TIMEOUT * 2):
                    await self._rebalance(probe=False)
            except Exception as error:  # noqa: BLE001 - whatever went wrong, start afresh
                _log.warning(
                    "lost RabbitMQ; reconnecting",
                    topic=self._route.topic,
                    group=self._route.group,
                    error=f"{type(error).__name__}: {error}",
                )
                await self._reconnect()

    async def _reconnect(self) -> None:
        await self._drop()
        delay = _TICK
        while True:
            try:
                await self._connect()
            except (BrokerUnavailableError, *_BROKER_ERRORS):
                await asyncio.sleep(delay)
                delay = min(delay * 2, _MAX_RECONNECT_DELAY)
            else:
                self._probe_delay = self._next_probe = 0.0
                return

    async def _drop(self) -> None:
        """Forget every partition and the connection (the broker redelivers what was unacked)."""
        tasks = [p.task for p in self._owned.values() if p.task is not None]
        tasks += self._releases
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        self._owned.clear()
        connection, self._connection, self._control = self._connection, None, None
        if connection is not None:
            await _close_quietly(connection.close())

    async def _rebalance(self, *, probe: bool) -> None:
        """Compare what this consumer owns with its fair share; hand back or take partitions."""
        if self._connection is None or self._connection.is_closed:
            raise ConnectionError("the connection to RabbitMQ is closed")
        for part in [p for p in self._owned.values() if _broken(p) and not p.releasing]:
            self._start_release(part)
        members = await self._consumers(self._names.members(self._route.topic, self._route.group))
        if members != self._members:
            self._members, self._probe_delay, self._next_probe = members, 0.0, 0.0
        share = math.ceil(self._route.partitions / max(members, 1))
        held = [p for p in self._owned.values() if not p.releasing]
        if len(held) > share:
            for part in sorted(held, key=lambda p: (p.busy, -p.number))[: len(held) - share]:
                self._start_release(part)
        if len(held) >= share:
            self._settled = True
        elif probe or asyncio.get_running_loop().time() >= self._next_probe:
            await self._take_free(share - len(held))

    async def _take_free(self, wanted: int) -> None:
        """Take up to ``wanted`` partitions that no consumer owns; probe less often if none is."""
        partitions = self._route.partitions
        taken = 0
        for offset in range(partitions):
            number = (self._first + offset) % partitions
            if number in self._owned:
                continue
            owner = self._names.owner(self._route.topic, self._route.group, number)
            if await self._consumers(owner) == 0 and await self._take(number):
                taken += 1
                if taken == wanted:
                    break
        # Short of its share with nothing free: others hold more, or there are too many members.
        owned = any(not p.releasing for p in self._owned.values())
        self._settled = taken == wanted or owned or self._members > partitions
        if taken:
            self._probe_delay = 0.0
        else:
            self._probe_delay = min(max(self._probe_delay * 2, _TICK), _MAX_PROBE_DELAY)
        self._next_probe = asyncio.get_running_loop().time() + self._probe_delay

    async def _consumers(self, queue: str) -> int:
        assert self._control is not None  # noqa: S101 - set by _connect before any rebalance
        declared = await self._control.declare_queue(queue, passive=True)
        result = declared.declaration_result
        return int(result.consumer_count or 0)

    async def _take(self, number: int) -> bool:
        """Own partition ``number`` if no other consumer does; False if one was faster."""
        assert self._connection is not None  # noqa: S101 - set by _connect before any rebalance
        route = self._route
        channel = await self._connection.channel(publisher_confirms=False)
        try:
            await channel.set_qos(prefetch_count=1)
            owner = await channel.get_queue(
                self._names.owner(route.topic, route.group, number), ensure=False
            )
            try:
                await owner.consume(_ignore, no_ack=True, exclusive=True)
            except ChannelAccessRefused:
                return False
            queue = await channel.get_queue(
                self._names.queue(route.topic, route.group, number), ensure=False
            )
            part = _Partition(number, channel, queue)
            part.consumer_tag = await queue.consume(part.receive)
        except BaseException:
            await _close_quietly(channel.close())
            raise
        part.task = asyncio.create_task(self._work(part))
        self._owned[number] = part
        return True

    def _start_release(self, part: _Partition) -> None:
        part.releasing = True
        task = asyncio.create_task(self._release(part))
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    async def _release(self, part: _Partition) -> None:
        """Stop receiving, finish what was received, then close the channel (freeing the lock)."""
        try:
            if not part.leaving and not _broken(part):
                await part.stop_receiving()
            if part.task is not None:
                await asyncio.wait([part.task])
        except _BROKER_ERRORS as error:
            _log.warning("could not hand a partition back cleanly", error=str(error))
        finally:
            if self._owned.get(part.number) is part:
                del self._owned[part.number]
            if part.task is not None and not part.task.done():
                part.task.cancel()
            await _close_quietly(part.channel.close())

    async def _work(self, part: _Partition) -> None:
        """Handle the partition's messages one at a time, each acknowledged after dispatch."""
        while True:
            incoming = await part.inbox.get()
            if incoming is None:
                return
            async with self._slots:
                if part.leaving:
                    return
                part.busy = True
                try:
                    await self._handle(part.number, incoming)
                except Exception as error:  # noqa: BLE001 - the partition is handed back, not lost
                    # Unacknowledged, the message comes back once this partition's channel closes.
                    _log.warning(
                        "could not finish a message; handing its partition back",
                        topic=self._route.topic,
                        group=self._route.group,
                        error=f"{type(error).__name__}: {error}",
                    )
                    return
                finally:
                    part.busy = False

    async def _handle(self, partition: int, incoming: AbstractIncomingMessage) -> None:
        headers = incoming.headers or {}
        try:
            message = Message.from_headers(self._route.topic, _text(headers), incoming.body)
        except MalformedMessageError as error:
            _log.error("malformed message sent to the dead-letter exchange", error=str(error))
            await incoming.reject(requeue=False)
            return
        count = headers.get("x-delivery-count")
        attempt = count + 1 if isinstance(count, int) else 1
        delivery = Delivery(message, self._route.group, partition, attempt)
        await dispatch(self._handler, delivery, self._options, self._dead_letters)
        await incoming.ack()


def _broken(part: _Partition) -> bool:
    return part.channel.is_closed or (part.task is not None and part.task.done())


def _amqp_message(message: Message) -> aio_pika.Message:
    return aio_pika.Message(
        message.payload,
        headers=dict(message.headers()),
        message_id=message.message_id,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )


def _text(headers: Mapping[str, object]) -> dict[str, str]:
    """The string headers of an AMQP message (the broker's own, like counts, are left out)."""
    text: dict[str, str] = {}
    for name, value in headers.items():
        if isinstance(value, bytes):
            text[name] = value.decode()
        elif isinstance(value, str):
            text[name] = value
    return text


async def _open_connection(url: str) -> AbstractConnection:
    try:
        async with asyncio.timeout(_CONNECT_TIMEOUT):
            return await aio_pika.connect(url)
    except _BROKER_ERRORS as error:
        raise BrokerUnavailableError(f"cannot connect to RabbitMQ: {error}") from error


async def _declare_exchange(channel: AbstractChannel, name: str) -> AbstractExchange:
    return await channel.declare_exchange(name, aio_pika.ExchangeType.DIRECT, durable=True)


async def _ignore(_: AbstractIncomingMessage) -> None:
    """The owner and members queues never hold messages; their consumers only count."""


async def _close_quietly(closing: Awaitable[object]) -> None:
    with contextlib.suppress(*_BROKER_ERRORS):
        async with asyncio.timeout(_CONNECT_TIMEOUT):
            await closing
