"""What the NATS JetStream adapter promises beyond the contract suite."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from chassis.messaging import MessageBus
from chassis.messaging.nats import client_url

from .recording import DeadLetters, Recorder, burst

OpenBus = Callable[..., Awaitable[MessageBus]]
TOPIC = "counted"
ON_NATS = pytest.mark.parametrize("broker_server", ["nats"], indirect=True)


def test_the_client_gets_the_url_without_the_bus_parameters() -> None:
    url = "nats://127.0.0.1:4222?partitions=4&namespace=t1"

    assert client_url(url) == "nats://127.0.0.1:4222"


@ON_NATS
async def test_a_batch_published_again_after_a_lost_confirm_is_stored_once(
    open_bus: OpenBus,
) -> None:
    bus = await open_bus()
    seen = Recorder()
    await bus.subscribe(TOPIC, "ledger", seen, dead_letters=DeadLetters())
    messages = burst(TOPIC, keys=4, per_key=5)

    await bus.publish(messages)
    await bus.publish(messages)  # as an outbox relay does when a confirm did not arrive

    await seen.wait_until(lambda: len(seen.handled) >= len(messages))
    await asyncio.sleep(0.5)  # time enough for copies, had any been stored
    assert sorted(seen.handled_ids()) == sorted(m.message_id for m in messages)
