"""What only the Kafka adapter does: redelivery by seeking back, and topic shape checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from chassis.messaging import DeadLetter, Delivery, MessageBus, SubscribeOptions

from .recording import WAIT, Recorder, burst

OpenBus = Callable[..., Awaitable[MessageBus]]
TOPIC = "counted"

pytestmark = pytest.mark.parametrize("broker_server", ["kafka"], indirect=True)


@dataclass
class FlakyDeadLetters:
    """A dead-letter sink whose first ``failures`` burials raise, like a database that is down."""

    failures: int
    buried: list[DeadLetter] = field(default_factory=list)

    async def bury(self, dead_letter: DeadLetter) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the dead-letter table is unavailable")
        self.buried.append(dead_letter)


async def test_a_message_whose_burial_fails_is_delivered_again_before_its_key_moves_on(
    open_bus: OpenBus,
) -> None:
    bus = await open_bus()

    async def reject_poison(delivery: Delivery) -> None:
        if delivery.message.payload == b"k0:0":
            raise ValueError("cannot parse this order")

    seen = Recorder(behaviour=reject_poison)
    dead = FlakyDeadLetters(failures=1)
    options = SubscribeOptions(max_attempts=2, retry_delay=0.01, max_retry_delay=0.05)
    await bus.subscribe(TOPIC, "ledger", seen, dead_letters=dead, options=options)

    await bus.publish(burst(TOPIC, keys=1, per_key=2))

    await seen.wait_until(lambda: len(seen.handled) == 1, WAIT)
    assert [(d.message.payload, d.attempt) for d in seen.deliveries] == [
        (b"k0:0", 1),
        (b"k0:0", 2),
        (b"k0:0", 1),  # Kafka counts no deliveries: the attempts start again
        (b"k0:0", 2),
        (b"k0:1", 1),
    ]
    assert [d.message.payload for d in dead.buried] == [b"k0:0"]


async def test_a_topic_with_other_partitions_than_the_url_is_refused(
    open_bus: OpenBus, bus_url: str
) -> None:
    eight = await open_bus()
    await eight.publish(burst(TOPIC, keys=1, per_key=1))
    four = await open_bus(f"{bus_url}&partitions=4")

    with pytest.raises(ValueError, match="has 8 partitions, the bus URL says 4"):
        await four.publish(burst(TOPIC, keys=1, per_key=1))
