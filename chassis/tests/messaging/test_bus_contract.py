"""The promises of the message-bus port, checked unchanged against every adapter.

Each test runs once per backend (embedded, RabbitMQ, NATS JetStream, Kafka) in a namespace of
its own; see ``backends/`` for how each broker is provided.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from chassis.messaging import (
    BrokerUnavailableError,
    Delivery,
    Message,
    MessageBus,
    SubscribeOptions,
    partition_for,
)

from .recording import WAIT, DeadLetters, Recorder, burst, eventually, sequence_of

if TYPE_CHECKING:
    from .backends import BrokerServer

OpenBus = Callable[..., Awaitable[MessageBus]]
TOPIC = "counted"
FAST = SubscribeOptions(concurrency=4, handler_timeout=5.0, retry_delay=0.05)


async def test_a_message_reaches_every_group_with_its_headers(open_bus: OpenBus) -> None:
    bus = await open_bus()
    shipping, mailing = Recorder(), Recorder()
    await bus.subscribe(TOPIC, "shipping", shipping, dead_letters=DeadLetters(), options=FAST)
    await bus.subscribe(TOPIC, "mailing", mailing, dead_letters=DeadLetters(), options=FAST)
    sent = Message(
        topic=TOPIC,
        key="order-1",
        event_type="OrderPlaced",
        payload=b'{"order_id": "order-1"}',
        schema_version=2,
        causation_id="command-7",
        correlation_id="checkout-3",
        trace_context={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
    )

    await bus.publish([sent])

    for recorder in (shipping, mailing):
        await recorder.wait_until(lambda r=recorder: len(r.handled) == 1)  # type: ignore[misc]
        received = recorder.handled[0]
        assert received.message == sent
        assert received.attempt == 1
        assert received.partition == partition_for("order-1", bus.partitions)
    assert shipping.handled[0].group == "shipping"


async def test_messages_of_one_key_arrive_in_publish_order_across_consumers(
    open_bus: OpenBus,
) -> None:
    first, second = await open_bus(), await open_bus()

    async def jitter(delivery: Delivery) -> None:
        await asyncio.sleep((hash(delivery.message.message_id) % 5) / 1000)

    seen = Recorder(behaviour=jitter)  # one recorder: the group's view across both consumers
    handled_by: dict[str, int] = {"first": 0, "second": 0}
    for name, bus in (("first", first), ("second", second)):

        async def handle(delivery: Delivery, name: str = name) -> None:
            await seen(delivery)
            handled_by[name] += 1

        await bus.subscribe(TOPIC, "ledger", handle, dead_letters=DeadLetters(), options=FAST)
    messages = burst(TOPIC, keys=12, per_key=25)

    await first.publish(messages[:150])
    await second.publish(messages[150:])

    await seen.wait_until(lambda: len(seen.handled) >= len(messages))
    for k in range(12):
        assert sequence_of(seen.handled, f"k{k}") == list(range(25)), f"key k{k} out of order"
    assert handled_by["first"] > 0, "order held only because one consumer did all the work"
    assert handled_by["second"] > 0, "order held only because one consumer did all the work"


async def test_the_consumers_of_a_group_share_its_messages(open_bus: OpenBus) -> None:
    publisher, first_bus, second_bus = await open_bus(), await open_bus(), await open_bus()
    first, second = Recorder(), Recorder()
    await first_bus.subscribe(TOPIC, "packers", first, dead_letters=DeadLetters(), options=FAST)
    await second_bus.subscribe(TOPIC, "packers", second, dead_letters=DeadLetters(), options=FAST)
    messages = burst(TOPIC, keys=64, per_key=3)

    await publisher.publish(messages)

    async def all_handled() -> bool:  # either recorder may handle the last one
        return len(first.handled) + len(second.handled) >= len(messages)

    await eventually(all_handled)
    assert first.handled, "the first consumer of the group got nothing"
    assert second.handled, "the second consumer of the group got nothing"
    assert sorted(first.handled_ids() + second.handled_ids()) == sorted(
        m.message_id for m in messages
    )


async def test_a_failed_attempt_is_delivered_again_before_later_messages_of_its_key(
    open_bus: OpenBus,
) -> None:
    bus = await open_bus()
    failed_once: set[str] = set()

    async def fail_first_attempt_of_n1(delivery: Delivery) -> None:
        if delivery.message.payload == b"k0:1" and delivery.message.message_id not in failed_once:
            failed_once.add(delivery.message.message_id)
            raise RuntimeError("payment service said no, this time")

    seen = Recorder(behaviour=fail_first_attempt_of_n1)
    dead = DeadLetters()
    await bus.subscribe(TOPIC, "ledger", seen, dead_letters=dead, options=FAST)

    await bus.publish(burst(TOPIC, keys=1, per_key=4))

    await seen.wait_until(lambda: len(seen.handled) == 4)
    assert sequence_of(seen.deliveries, "k0") == [0, 1, 1, 2, 3]
    assert [d.attempt for d in seen.deliveries] == [1, 1, 2, 1, 1]
    assert dead.buried == []


async def test_a_handler_that_outlives_its_timeout_is_tried_again(open_bus: OpenBus) -> None:
    bus = await open_bus()

    async def hang_on_first_attempt(delivery: Delivery) -> None:
        if delivery.attempt == 1:
            await asyncio.sleep(60)

    seen = Recorder(behaviour=hang_on_first_attempt)
    options = SubscribeOptions(handler_timeout=0.3, retry_delay=0.05)
    await bus.subscribe(TOPIC, "ledger", seen, dead_letters=DeadLetters(), options=options)

    await bus.publish(burst(TOPIC, keys=1, per_key=1))

    await seen.wait_until(lambda: len(seen.handled) == 1)
    assert [d.attempt for d in seen.deliveries] == [1, 2]


async def test_a_message_that_keeps_failing_goes_to_the_dead_letters_and_its_key_moves_on(
    open_bus: OpenBus,
) -> None:
    bus = await open_bus()

    async def reject_poison(delivery: Delivery) -> None:
        if delivery.message.payload == b"k0:0":
            raise ValueError("cannot parse this order")

    seen = Recorder(behaviour=reject_poison)
    dead = DeadLetters()
    options = SubscribeOptions(max_attempts=3, retry_delay=0.01)
    await bus.subscribe(TOPIC, "ledger", seen, dead_letters=dead, options=options)
    messages = burst(TOPIC, keys=1, per_key=3)

    await bus.publish(messages)

    await seen.wait_until(lambda: len(seen.handled) == 2)
    await dead.wait_for(1)
    [buried] = dead.buried
    assert buried.message == messages[0]
    assert (buried.group, buried.attempts) == ("ledger", 3)
    assert buried.error == "ValueError: cannot parse this order"
    assert sequence_of(seen.handled, "k0") == [1, 2]


async def test_a_subscription_handles_at_most_its_concurrency_at_once(open_bus: OpenBus) -> None:
    bus = await open_bus()

    async def slow(_: Delivery) -> None:
        await asyncio.sleep(0.02)

    seen = Recorder(behaviour=slow)
    options = SubscribeOptions(concurrency=3)
    await bus.subscribe(TOPIC, "ledger", seen, dead_letters=DeadLetters(), options=options)

    await bus.publish(burst(TOPIC, keys=40, per_key=3))

    await seen.wait_until(lambda: len(seen.handled) == 120)
    assert 1 < seen.most_in_flight <= 3


async def test_a_stopped_consumer_leaves_its_unfinished_message_to_the_next(
    open_bus: OpenBus,
) -> None:
    leaving, staying = await open_bus(), await open_bus()
    started = asyncio.Event()

    async def never_finish(_: Delivery) -> None:
        started.set()
        await asyncio.sleep(3600)

    stuck = Recorder(behaviour=never_finish)
    options = SubscribeOptions(handler_timeout=3600)
    subscription = await leaving.subscribe(
        TOPIC, "ledger", stuck, dead_letters=DeadLetters(), options=options
    )
    await leaving.publish(burst(TOPIC, keys=1, per_key=1))
    await asyncio.wait_for(started.wait(), WAIT)

    await subscription.stop(grace=0.1)  # gives up on the handler: the message stays unacked
    taker = Recorder()
    await staying.subscribe(TOPIC, "ledger", taker, dead_letters=DeadLetters(), options=FAST)

    await taker.wait_until(lambda: len(taker.handled) == 1)
    assert taker.handled[0].message.payload == b"k0:0"
    assert stuck.handled == []


async def test_stop_waits_for_the_handler_in_flight_and_acknowledges_its_message(
    open_bus: OpenBus,
) -> None:
    first, second = await open_bus(), await open_bus()
    started = asyncio.Event()

    async def finish_soon(_: Delivery) -> None:
        started.set()
        await asyncio.sleep(0.3)

    finishing = Recorder(behaviour=finish_soon)
    subscription = await first.subscribe(TOPIC, "ledger", finishing, dead_letters=DeadLetters())
    await first.publish(burst(TOPIC, keys=1, per_key=1))
    await asyncio.wait_for(started.wait(), WAIT)

    async with asyncio.timeout(5):  # well inside the grace: stop returns once the handler did
        await subscription.stop(grace=30)
    after = Recorder()
    await second.subscribe(TOPIC, "ledger", after, dead_letters=DeadLetters())
    await second.publish(burst(TOPIC, keys=1, per_key=2)[1:])

    await after.wait_until(lambda: len(after.handled) == 1)
    assert len(finishing.handled) == 1
    assert after.handled[0].message.payload == b"k0:1"  # k0:0 was acknowledged, not redelivered


async def test_a_message_left_unfinished_comes_back_counted_and_can_reach_the_dead_letters(
    open_bus: OpenBus, broker_server: BrokerServer
) -> None:
    no_count = getattr(broker_server, "no_delivery_count", None)
    if no_count is not None:
        pytest.skip(no_count)
    first, second = await open_bus(), await open_bus()
    started = asyncio.Event()

    async def hang(_: Delivery) -> None:
        started.set()
        await asyncio.sleep(3600)

    options = SubscribeOptions(max_attempts=2, handler_timeout=3600)
    leaving = await first.subscribe(
        TOPIC, "ledger", hang, dead_letters=DeadLetters(), options=options
    )
    sent = Message(topic=TOPIC, key="k0", event_type="Counted", payload=b"k0:0")
    await first.publish([sent])
    await asyncio.wait_for(started.wait(), WAIT)
    await leaving.stop(grace=0.1)

    async def reject(_: Delivery) -> None:
        raise ValueError("still cannot handle it")

    seen, dead = Recorder(behaviour=reject), DeadLetters()
    await second.subscribe(TOPIC, "ledger", seen, dead_letters=dead, options=options)

    await dead.wait_for(1)
    assert [d.attempt for d in seen.deliveries] == [2]  # the broker's count, not a fresh 1
    assert (dead.buried[0].message, dead.buried[0].attempts) == (sent, 2)


async def test_starting_against_an_unreachable_broker_says_so(bus_url: str) -> None:
    from chassis.messaging import connect  # noqa: PLC0415

    bus = connect(_unreachable(bus_url))

    with pytest.raises(BrokerUnavailableError):
        await bus.start()
    await bus.close()


def _unreachable(url: str) -> str:
    """``url`` pointed at a port where nothing listens (or a directory that cannot exist)."""
    if url.startswith("embedded:"):
        return "embedded:///proc/souk-cannot-create-this"
    scheme, rest = url.split("://", 1)
    host_port, _, tail = rest.partition("/")
    credentials, _, _ = host_port.rpartition("@")
    prefix = f"{credentials}@" if credentials else ""
    return f"{scheme}://{prefix}127.0.0.1:9/{tail}"


def _start_consumer(url: str, group: str, effects: Path, slow: float) -> subprocess.Popen[str]:
    script = Path(__file__).with_name("consumer_process.py")
    process = subprocess.Popen(
        [sys.executable, str(script), url, TOPIC, group, str(effects), str(slow)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


def _effects(path: Path) -> tuple[int, dict[str, list[int]]]:
    with sqlite3.connect(path) as db:
        deliveries = db.execute("SELECT count(*) FROM deliveries").fetchone()[0]
        rows = db.execute("SELECT key, n FROM effects ORDER BY rowid").fetchall()
    by_key: dict[str, list[int]] = {}
    for key, n in rows:
        by_key.setdefault(key, []).append(n)
    return deliveries, by_key


async def _wait_for_effects(path: Path, count: int) -> None:
    async def enough() -> bool:
        if not await asyncio.to_thread(path.exists):
            return False
        _, by_key = await asyncio.to_thread(_effects, path)
        return sum(len(v) for v in by_key.values()) >= count

    await eventually(enough, within=90)


async def test_a_consumer_killed_mid_burst_loses_nothing(
    open_bus: OpenBus, bus_url: str, tmp_path: Path
) -> None:
    effects = tmp_path / "effects.db"
    publisher = await open_bus()
    doomed = _start_consumer(bus_url, "ledger", effects, slow=0.01)
    messages = burst(TOPIC, keys=10, per_key=30)
    try:
        await publisher.publish(messages)
        await _wait_for_effects(effects, 40)
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait()
        _, done_at_kill = _effects(effects)
        survivor = _start_consumer(bus_url, "ledger", effects, slow=0.0)
        try:
            await _wait_for_effects(effects, len(messages))
        finally:
            survivor.terminate()
            survivor.wait(30)
    finally:
        if doomed.poll() is None:
            doomed.kill()
    _, by_key = _effects(effects)
    assert sum(len(ns) for ns in done_at_kill.values()) < len(messages), "killed too late"
    assert {key: sorted(ns) for key, ns in by_key.items()} == {
        f"k{k}": list(range(30)) for k in range(10)
    }


async def test_a_broker_restart_mid_burst_loses_nothing(
    restartable_bus_url: str, open_bus: OpenBus, broker_server: BrokerServer
) -> None:
    # restartable_bus_url comes first so that its namespace is forgotten after the buses close.
    if broker_server.restartable is not None:
        pytest.skip(broker_server.restartable)
    publisher, consumer = await open_bus(restartable_bus_url), await open_bus(restartable_bus_url)
    seen = Recorder()
    await consumer.subscribe(TOPIC, "ledger", seen, dead_letters=DeadLetters(), options=FAST)
    messages = burst(TOPIC, keys=8, per_key=25)

    await publisher.publish(messages[:100])
    await seen.wait_until(lambda: len(seen.handled) >= 10)
    await asyncio.to_thread(broker_server.restart)
    async with asyncio.timeout(60):  # the publisher retries as the outbox relay would
        while True:
            try:
                await publisher.publish(messages[100:])
                break
            except BrokerUnavailableError:
                await asyncio.sleep(0.5)

    await seen.wait_until(
        lambda: {m.message_id for m in messages} <= set(seen.handled_ids()), within=90
    )
    for k in range(8):
        handled = sequence_of(seen.handled, f"k{k}")
        assert sorted(set(handled)) == list(range(25))
