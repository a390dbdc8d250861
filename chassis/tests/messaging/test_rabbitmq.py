"""What the RabbitMQ adapter promises beyond the contract suite."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from chassis.messaging import MessageBus
from chassis.messaging.rabbitmq import client_url

from .recording import DeadLetters, Recorder, burst

OpenBus = Callable[..., Awaitable[MessageBus]]
TOPIC = "counted"
ON_RABBITMQ = pytest.mark.parametrize("broker_server", ["rabbitmq"], indirect=True)


def test_the_client_gets_the_url_without_the_bus_parameters() -> None:
    url = "amqp://guest:guest@127.0.0.1:5672/shop?partitions=4&heartbeat=30&namespace=t1"

    assert client_url(url) == "amqp://guest:guest@127.0.0.1:5672/shop?heartbeat=30"


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
