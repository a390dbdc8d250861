"""The NATS JetStream adapter (nats-py), for nats-server 2.9 and later.

Layout, every name prefixed with the URL's namespace (``souk`` unless ``?namespace=``):

- one stream per topic, ``<ns>_<topic>``, on file storage, holding the subjects
  ``<ns>.<topic>.<partition>`` (``partition_for(key, partitions)``). Its retention is
  *interest*: a message stays until every group's consumer acknowledged it, and a message no
  group listens for is not kept. Each message carries ``Nats-Msg-Id`` (its message id), so a
  batch published again after an unconfirmed attempt is stored once (JetStream's duplicate
  window);
- per (group, partition) one durable pull consumer ``<group>_<p>`` filtered on the partition's
  subject, explicit acks, ``max_ack_pending=1``: the partition gives out its next message only
  once the previous one is acknowledged, whichever consumer of the group holds it. Every
  consumer of the group pulls from every partition, one message per pull, and JetStream serves
  the waiting pulls in turn: that shares the partitions out and keeps each key's order.
  ``num_delivered`` seeds ``Delivery.attempt``; after ``_MAX_DELIVER`` deliveries (a message
  that kills its consumer every time) JetStream stops delivering it (an advisory says so) and
  the partition moves on.

A subscription keeps one pull waiting on each partition and so holds at most one message per
partition; it handles at most ``concurrency`` of them at once, the others wait for a slot.
From the moment a message arrives until it is acknowledged, an in-progress ack every
``_ACK_WAIT / 3`` seconds keeps JetStream from giving it to another consumer, so ``_ACK_WAIT``
stays short and a consumer that dies leaves its messages to the others after a few seconds
(JetStream redelivers only after the ack wait, even when the client is gone). ``stop`` naks
the messages it gives up on, so they are redelivered at once. nats-py reconnects by itself and
re-creates its subscriptions; the pull loops simply pull again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import nats
import nats.errors
import nats.js.errors
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
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

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js import JetStreamContext

_log = get_logger("chassis.messaging.nats")

_CONNECT_TIMEOUT = 3
_CONFIRM_TIMEOUT = 5.0
"""Seconds ``publish`` waits for JetStream's acks before it gives up."""
_ACK_WAIT = 6.0
"""Seconds JetStream waits for an ack (or an in-progress ack) before it delivers again."""
_MAX_DELIVER = 50
"""Deliveries of one message before JetStream gives up on it.

Handler failures are retried inside the consumer (``dispatch``); only deliveries that ended
without an ack (a consumer that died or stopped) count here, so this is well above any sensible
``max_attempts``.
"""
_PULL_WAIT = 2.0
"""Seconds a pull waits for a message (pulls are lost when the server restarts)."""
_RETRY_DELAY = 0.5
_DUPLICATE_WINDOW = 120.0


def client_url(url: str) -> str:
    """``url`` without the query parameters that belong to the bus, not to the NATS client."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("partitions", "namespace")]
    return urlunsplit(parts._replace(query=urlencode(query)))


def stream_name(namespace: str, topic: str) -> str:
    """The stream of ``topic`` (stream names cannot hold dots)."""
    return f"{namespace}_{topic}"


_NATS_ERRORS = (TimeoutError, OSError, nats.errors.Error)


class NatsBus:
    """A :class:`~chassis.messaging.bus.MessageBus` on NATS JetStream; see the module docstring."""

    def __init__(
        self, url: str, *, partitions: int = DEFAULT_PARTITIONS, namespace: str = "souk"
    ) -> None:
        if partitions < 1:
            raise ValueError("partitions must be >= 1")
        self.partitions = partitions
        self._url = client_url(url)
        self._namespace = namespace
        self._client: Client | None = None
        self._streams: set[str] = set()
        self._subscriptions: list[NatsSubscription] = []
        self._closed = False

    async def start(self) -> None:
        """Connect; raise :class:`BrokerUnavailableError` if the server cannot be reached."""
        if self._client is not None:
            return
        try:
            client = await nats.connect(
                self._url,
                connect_timeout=_CONNECT_TIMEOUT,
                reconnect_time_wait=1,
                # The first connection fails fast (the option also bounds it) ...
                max_reconnect_attempts=1,
                ping_interval=10,
                error_cb=self._on_error,
                disconnected_cb=self._on_disconnected,
                reconnected_cb=self._on_reconnected,
            )
        except _NATS_ERRORS as error:
            raise BrokerUnavailableError(f"cannot connect to NATS: {error}") from error
        # ... and once connected, the client reconnects for as long as it takes.
        client.options["max_reconnect_attempts"] = -1
        self._client = client

    async def close(self, grace: float = 10.0) -> None:
        """Stop every subscription, then disconnect; idempotent."""
        self._closed = True
        await asyncio.gather(*(s.stop(grace) for s in self._subscriptions))
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(*_NATS_ERRORS):
                await client.flush(timeout=2)
            with contextlib.suppress(*_NATS_ERRORS):
                await client.close()

    async def publish(self, messages: Sequence[Message]) -> None:
        """Send ``messages`` and return once JetStream acknowledged storing them all."""
        if not messages:
            return
        js = self._jetstream()
        try:
            async with asyncio.timeout(_CONFIRM_TIMEOUT):
                for topic in {m.topic for m in messages}:
                    await self._ensure_stream(js, topic)
                pending = [
                    await js.publish_async(
                        f"{self._namespace}.{m.topic}.{partition_for(m.key, self.partitions)}",
                        m.payload,
                        headers={**m.headers(), "Nats-Msg-Id": m.message_id},
                    )
                    for m in messages
                ]
                await asyncio.gather(*pending)
        except _NATS_ERRORS as error:
            raise BrokerUnavailableError(f"NATS did not confirm the messages: {error}") from error

    async def subscribe(
        self,
        topic: str,
        group: str,
        handler: Handler,
        *,
        dead_letters: DeadLetterSink,
        options: SubscribeOptions = SubscribeOptions(),  # noqa: B008 - frozen, so safe to share
    ) -> NatsSubscription:
        """Join ``group`` on ``topic``: pull from each of its partitions in turn with the others."""
        if self._closed:
            raise RuntimeError("the bus is closed")
        js = self._jetstream()
        check_name("group", group)
        stream = stream_name(self._namespace, check_name("topic", topic))
        pulls: list[JetStreamContext.PullSubscription] = []
        try:
            await self._ensure_stream(js, topic)
            for number in range(self.partitions):
                durable = f"{group}_{number}"
                await js.add_consumer(
                    stream,
                    ConsumerConfig(
                        durable_name=durable,
                        filter_subject=f"{self._namespace}.{topic}.{number}",
                        ack_policy=AckPolicy.EXPLICIT,
                        deliver_policy=DeliverPolicy.NEW,
                        max_ack_pending=1,
                        ack_wait=_ACK_WAIT,
                        max_deliver=_MAX_DELIVER,
                    ),
                )
                pulls.append(await js.pull_subscribe_bind(durable, stream))
        except _NATS_ERRORS as error:
            for pull in pulls:
                await _quietly(pull.unsubscribe())
            raise BrokerUnavailableError(f"NATS is unavailable: {error}") from error
        subscription = NatsSubscription(
            topic, group, pulls, handler, dead_letters=dead_letters, options=options
        )
        self._subscriptions.append(subscription)
        return subscription

    async def _on_error(self, error: Exception) -> None:
        _log.warning("NATS connection error", error=f"{type(error).__name__}: {error}")

    async def _on_disconnected(self) -> None:
        if not self._closed:
            _log.warning("disconnected from NATS; reconnecting")

    async def _on_reconnected(self) -> None:
        _log.info("reconnected to NATS")

    def _jetstream(self) -> JetStreamContext:
        if self._client is None:
            raise RuntimeError("the bus is not started, or closed")
        return self._client.jetstream(timeout=_CONFIRM_TIMEOUT)

    async def _ensure_stream(self, js: JetStreamContext, topic: str) -> None:
        name = stream_name(self._namespace, check_name("topic", topic))
        if name in self._streams:
            return
        config = StreamConfig(
            name=name,
            subjects=[f"{self._namespace}.{topic}.*"],
            storage=StorageType.FILE,
            retention=RetentionPolicy.INTEREST,
            duplicate_window=_DUPLICATE_WINDOW,
        )
        try:
            await js.add_stream(config)
        except nats.js.errors.BadRequestError:
            # It exists with settings changed by hand (limits, say): use it as it is.
            await js.stream_info(name)
        self._streams.add(name)


class NatsSubscription:
    """One consumer of a group: a pull loop per partition, at most ``concurrency`` busy at once."""

    def __init__(
        self,
        topic: str,
        group: str,
        pulls: list[JetStreamContext.PullSubscription],
        handler: Handler,
        *,
        dead_letters: DeadLetterSink,
        options: SubscribeOptions,
    ) -> None:
        self._topic = topic
        self._group = group
        self._pulls = pulls
        self._handler = handler
        self._dead_letters = dead_letters
        self._options = options
        self._slots = asyncio.Semaphore(options.concurrency)
        self._busy: set[int] = set()
        self._stopped = False
        self._tasks = [
            asyncio.create_task(self._work(number, pull)) for number, pull in enumerate(pulls)
        ]

    async def stop(self, grace: float = 10.0) -> None:
        """Stop pulling; give handlers ``grace`` seconds, then nak their messages."""
        if self._stopped:
            return
        self._stopped = True
        busy = []
        for number, task in enumerate(self._tasks):
            if number in self._busy:
                busy.append(task)
            else:
                task.cancel()
        if busy:
            _, late = await asyncio.wait(busy, timeout=grace)
            for task in late:
                task.cancel()
        await asyncio.wait(self._tasks)
        for pull in self._pulls:
            await _quietly(pull.unsubscribe())

    async def _work(self, number: int, pull: JetStreamContext.PullSubscription) -> None:
        while not self._stopped:
            try:
                [msg] = await pull.fetch(1, timeout=_PULL_WAIT)
            except TimeoutError:
                continue
            except _NATS_ERRORS as error:
                _log.debug("pull failed; pulling again", error=str(error))
                await asyncio.sleep(_RETRY_DELAY)
                continue
            await self._handle(number, msg)

    async def _handle(self, number: int, msg: Msg) -> None:
        """Handle ``msg`` once a slot is free, keeping JetStream from redelivering it meanwhile."""
        keep_alive = asyncio.create_task(_keep_alive(msg))
        try:
            async with self._slots:
                self._busy.add(number)
                try:
                    message = Message.from_headers(self._topic, msg.headers or {}, msg.data)
                    delivery = Delivery(message, self._group, number, msg.metadata.num_delivered)
                    await dispatch(self._handler, delivery, self._options, self._dead_letters)
                finally:
                    self._busy.discard(number)
        except asyncio.CancelledError:
            await _quietly(msg.nak())  # stopped: let another consumer have it now
            raise
        except MalformedMessageError as error:
            _log.error("malformed message dropped", error=str(error), topic=self._topic)
            await _quietly(msg.term())
            return
        except Exception as error:  # noqa: BLE001 - the message is delivered again, not lost
            _log.warning(
                "could not finish a message; it will be delivered again",
                topic=self._topic,
                group=self._group,
                error=f"{type(error).__name__}: {error}",
            )
            await _quietly(msg.nak(delay=_RETRY_DELAY))
            return
        finally:
            keep_alive.cancel()
        await _quietly(msg.ack())


async def _keep_alive(msg: Msg) -> None:
    """Tell JetStream the message is still being handled, so it does not deliver it again."""
    while True:
        await asyncio.sleep(_ACK_WAIT / 3)
        await _quietly(msg.in_progress())


async def _quietly(sending: Awaitable[None]) -> None:
    """Send an ack (or an unsubscribe); if the connection is gone, JetStream copes without it."""
    with contextlib.suppress(*_NATS_ERRORS):
        await sending
