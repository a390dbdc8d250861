"""The message-bus port: publish and subscribe, whatever the broker behind it.

Promises every adapter keeps (the contract suite in ``chassis/tests/messaging`` proves them):

- ``publish`` returns only once the broker holds the messages durably, in the order given;
- every group subscribed to a topic gets every message published after the group first
  subscribed (fan-out); the consumers of one group share the messages (load sharing);
- messages with the same key reach a group in publish order, one at a time (a topic is cut
  into ``partitions`` by key, and a partition is handled by one consumer at a time);
- at-least-once: a message is acknowledged only after its handler returned; a handler that
  raises or outlives ``handler_timeout`` sees the message again (``attempt`` + 1) before any
  later message of its key, and after ``max_attempts`` it goes to the dead letters; a
  consumer that dies leaves its unacknowledged messages to be delivered again;
- a subscription handles at most ``concurrency`` messages at once and fetches no more than
  it can handle (back-pressure, not unbounded memory).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from chassis.messaging.message import Delivery, Message
from chassis.settings import DEFAULT_PARTITIONS

Handler = Callable[[Delivery], Awaitable[None]]
"""``async def handle(delivery) -> None``: returning acknowledges, raising asks for redelivery."""

__all__ = [
    "DEFAULT_PARTITIONS",
    "BrokerUnavailableError",
    "DeadLetter",
    "DeadLetterSink",
    "Handler",
    "MessageBus",
    "SubscribeOptions",
    "Subscription",
]


class BrokerUnavailableError(Exception):
    """The broker cannot be reached or did not confirm in time: publishing may be tried again."""


@dataclass(frozen=True, slots=True)
class SubscribeOptions:
    """How a subscription handles its messages."""

    concurrency: int = 8
    """Messages handled at once (from different partitions)."""
    max_attempts: int = 5
    """Attempts before a message goes to the dead letters."""
    handler_timeout: float = 30.0
    """Seconds a handler may take before the attempt counts as failed."""
    retry_delay: float = 0.1
    """Seconds before the second attempt; doubled for each next one, to ``max_retry_delay``."""
    max_retry_delay: float = 5.0

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.max_attempts < 1 or self.handler_timeout <= 0:
            raise ValueError("concurrency and max_attempts must be >= 1, handler_timeout > 0")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that failed ``attempts`` times in ``group``, with the last error."""

    message: Message
    group: str
    attempts: int
    error: str


class DeadLetterSink(Protocol):
    """Where a subscription puts the messages it gave up on (a service's DB, a test's list)."""

    async def bury(self, dead_letter: DeadLetter) -> None: ...


class Subscription(Protocol):
    """A running subscription."""

    async def stop(self, grace: float = 10.0) -> None:
        """Stop fetching; give handlers in flight ``grace`` seconds to finish (and be acknowledged).

        Handlers still running after that are cancelled and their messages left unacknowledged,
        so the broker delivers them again (to this group's other consumers, or later). Stopping
        twice is harmless.
        """
        ...


class MessageBus(Protocol):
    """A connection to a broker; see the module docstring for what every adapter promises."""

    partitions: int

    async def start(self) -> None:
        """Connect; raise :class:`BrokerUnavailableError` if the broker cannot be reached."""
        ...

    async def close(self, grace: float = 10.0) -> None:
        """Stop every subscription (see :meth:`Subscription.stop`) and disconnect; idempotent."""
        ...

    async def publish(self, messages: Sequence[Message]) -> None:
        """Hand ``messages`` to the broker; return once it holds them durably, in order."""
        ...

    async def subscribe(
        self,
        topic: str,
        group: str,
        handler: Handler,
        *,
        dead_letters: DeadLetterSink,
        options: SubscribeOptions = SubscribeOptions(),
    ) -> Subscription:
        """Start handling the messages of ``topic`` as (one consumer of) ``group``."""
        ...
