"""Hand-written test doubles for the contract suite: a recording handler and dead-letter sink."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import chassis.testing
from chassis.messaging import DeadLetter, Delivery, Message

WAIT = 30.0
"""Seconds a test waits for deliveries: generous, for slow brokers on a busy machine."""


@dataclass
class Recorder:
    """Records what a handler saw; ``behaviour`` may sleep or raise to act a failing handler."""

    behaviour: Callable[[Delivery], Awaitable[None]] | None = None
    deliveries: list[Delivery] = field(default_factory=list)
    handled: list[Delivery] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, delivery: Delivery) -> None:
        self.deliveries.append(delivery)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.behaviour is not None:
                await self.behaviour(delivery)
            self.handled.append(delivery)
        finally:
            self.in_flight -= 1
            self._changed.set()

    def handled_ids(self) -> list[str]:
        return [d.message.message_id for d in self.handled]

    async def wait_until(self, condition: Callable[[], bool], within: float = WAIT) -> None:
        async with asyncio.timeout(within):
            while not condition():
                self._changed.clear()
                await self._changed.wait()


@dataclass
class DeadLetters:
    """A dead-letter sink that keeps what it is given in a list."""

    buried: list[DeadLetter] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def bury(self, dead_letter: DeadLetter) -> None:
        self.buried.append(dead_letter)
        self._changed.set()

    async def wait_for(self, count: int, within: float = WAIT) -> None:
        async with asyncio.timeout(within):
            while len(self.buried) < count:
                self._changed.clear()
                await self._changed.wait()


async def eventually(check: Callable[[], Awaitable[bool]], within: float = WAIT) -> None:
    """``chassis.testing.eventually`` with the messaging tests' patience."""
    await chassis.testing.eventually(check, within)


def burst(topic: str, keys: int, per_key: int) -> list[Message]:
    """``keys * per_key`` messages, interleaved by key; payload ``b"<key>:<n>"``."""
    return [
        Message(topic=topic, key=f"k{k}", event_type="Counted", payload=f"k{k}:{n}".encode())
        for n in range(per_key)
        for k in range(keys)
    ]


def sequence_of(deliveries: list[Delivery], key: str) -> list[int]:
    """The counters of ``key``'s messages in the order they were handled."""
    return [
        int(d.message.payload.decode().split(":")[1]) for d in deliveries if d.message.key == key
    ]
