"""What the RabbitMQ adapter promises beyond the contract suite."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from chassis.messaging import Delivery, Message, MessageBus, SubscribeOptions
from chassis.messaging.rabbitmq import client_url

from .recording import WAIT, DeadLetters, Recorder, burst

OpenBus = Callable[..., Awaitable[MessageBus]]
TOPIC = "counted"
ON_RABBITMQ = pytest.mark.parametrize("broker_server", ["rabbitmq"], indirect=True)


def test_the_client_gets_the_url_without_the_bus_parameters() -> None:
    url = "amqp://guest:guest@127.0.0.1:5672/shop?partitions=4&heartbeat=30&namespace=t1"

    assert client_url(url) == "amqp://guest:guest@127.0.0.1:5672/shop?heartbeat=30"


@ON_RABBITMQ
async def test_a_message_left_unfinished_comes_back_counted_and_can_reach_the_dead_letters(
    open_bus: OpenBus,
) -> None:
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


@ON_RABBITMQ
async def test_the_partitions_of_a_consumer_that_leaves_go_to_those_that_stay(
    open_bus: OpenBus,
) -> None:
    staying_bus, leaving_bus = await open_bus(), await open_bus()
    staying, leaving = Recorder(), Recorder()
    await staying_bus.subscribe(TOPIC, "packers", staying, dead_letters=DeadLetters())
    subscription = await leaving_bus.subscribe(
        TOPIC, "packers", leaving, dead_letters=DeadLetters()
    )
    await subscription.stop()
    messages = burst(TOPIC, keys=64, per_key=2)

    await staying_bus.publish(messages)

    await staying.wait_until(lambda: len(staying.handled) == len(messages))
    assert leaving.handled == []


@ON_RABBITMQ
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
