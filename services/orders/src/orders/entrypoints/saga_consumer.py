"""The consumer of topic ``checkout``: the saga's commands, handed to the saga one by one.

The commands of one order share its key, so they come in order and one at a time; the
orders of different keys go through partitions side by side (``concurrency``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from chassis.messaging.bus import SubscribeOptions
from chassis.messaging.lifecycle import Consumer
from contracts.events import EventError, decode
from orders.domain.commands import RunStep
from orders.service_layer.ports import Receipt

if TYPE_CHECKING:
    from chassis.messaging.message import Delivery, Message
    from orders.service_layer.saga_handler import CheckoutSaga

StepTimer = Callable[[str, str, float], None]
"""``timer(step, outcome, seconds)``: told of every command handled ("ok") or not ("failed")."""

# A step's command comes back until the step is done or timed out (a minute at most), and a
# compensation's until it is done: with the backoff capped at a couple of seconds, this is
# about half an hour of an outage before a compensation's command goes to the dead letters
# (`souk dlq replay` sends it again), and the most a malformed command holds its partition.
MAX_ATTEMPTS = 1_000


def command_of(message: Message) -> RunStep:
    """The command a ``checkout`` message carries; ValueError if it carries none."""
    try:
        command = decode(
            message.event_type, message.schema_version, message.payload, schema=RunStep
        )
    except EventError as error:
        raise ValueError(f"not a checkout command: {error}") from error
    if not isinstance(command, RunStep):  # pragma: no cover - decode answers the schema's type
        raise TypeError(type(command).__name__)
    return command


def receipt_of(delivery: Delivery) -> Receipt:
    """The command's identity as the inbox keeps it."""
    return Receipt(group=delivery.group, command_id=delivery.message.message_id)


class SagaConsumer:
    """A bus handler for the saga's commands; it waits for the saga, made at start-up."""

    def __init__(self) -> None:
        self._saga: CheckoutSaga | None = None
        self._timer: StepTimer | None = None
        self._ready = asyncio.Event()

    def attach(self, saga: CheckoutSaga, *, timer: StepTimer | None = None) -> None:
        """Hand commands to ``saga`` from now on (its clients exist only once started);
        ``timer`` hears how long each took."""
        self._saga = saga
        self._timer = timer
        self._ready.set()

    async def __call__(self, delivery: Delivery) -> None:
        """Handle one command; raising asks the bus to deliver it again."""
        await self._ready.wait()
        if self._saga is None:  # pragma: no cover - set before the event
            raise RuntimeError("the saga is not attached")
        command = command_of(delivery.message)
        started = time.perf_counter()
        outcome = "failed"
        try:
            await self._saga.handle(command, receipt_of(delivery))
            outcome = "ok"
        finally:
            if self._timer is not None:
                self._timer(str(command.step), outcome, time.perf_counter() - started)


def saga_consumer(
    handler: SagaConsumer, *, concurrency: int, step_timeout: float, max_retry_delay: float
) -> Consumer:
    """The subscription to ``checkout``: a handler gets ``step_timeout`` per attempt."""
    return Consumer(
        RunStep.topic,
        handler,
        SubscribeOptions(
            concurrency=concurrency,
            max_attempts=MAX_ATTEMPTS,
            handler_timeout=step_timeout,
            retry_delay=0.1,
            max_retry_delay=max_retry_delay,
        ),
    )
