"""A hand-written fake of the message-bus port for tests of what sits on top of it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from chassis.messaging import (
    BrokerUnavailableError,
    DeadLetterSink,
    Handler,
    Message,
    SubscribeOptions,
    Subscription,
)


@dataclass
class FakeBus:
    """Records what is published; ``down`` makes publish fail as an unreachable broker does."""

    partitions: int = 8
    published: list[Message] = field(default_factory=list)
    down: bool = False
    lose_confirms: bool = False
    """The broker stores the messages but the confirm never arrives."""

    async def start(self) -> None:
        if self.down:
            raise BrokerUnavailableError("fake broker is down")

    async def close(self, grace: float = 10.0) -> None:
        del grace  # nothing in flight

    async def publish(self, messages: Sequence[Message]) -> None:
        if self.down:
            raise BrokerUnavailableError("fake broker is down")
        self.published.extend(messages)
        if self.lose_confirms:
            raise BrokerUnavailableError("no confirm from the fake broker")

    async def subscribe(
        self,
        topic: str,
        group: str,
        handler: Handler,
        *,
        dead_letters: DeadLetterSink,
        options: SubscribeOptions = SubscribeOptions(),  # noqa: B008
    ) -> Subscription:
        raise NotImplementedError("FakeBus only publishes")
