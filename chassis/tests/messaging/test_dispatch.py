"""One delivery through a handler: the attempts, the delays and the dead letters."""

from __future__ import annotations

import asyncio
import dataclasses

from chassis.messaging import Delivery, Message, SubscribeOptions
from chassis.messaging.dispatch import CRASHED_CONSUMERS, dispatch, retry_delay

from .recording import DeadLetters, Recorder

OPTIONS = SubscribeOptions(max_attempts=3, retry_delay=0.001, handler_timeout=0.2)


def delivery(attempt: int = 1) -> Delivery:
    message = Message(topic="orders", key="o-1", event_type="OrderPlaced", payload=b"{}")
    return Delivery(message=message, group="mailing", partition=3, attempt=attempt)


async def test_a_handler_that_succeeds_is_called_once() -> None:
    handler, dead = Recorder(), DeadLetters()

    await dispatch(handler, delivery(), OPTIONS, dead)

    assert [d.attempt for d in handler.deliveries] == [1]
    assert dead.buried == []


async def test_a_message_redelivered_by_the_broker_keeps_counting_from_its_attempt() -> None:
    async def fail(_: Delivery) -> None:
        raise RuntimeError("down")

    handler, dead = Recorder(behaviour=fail), DeadLetters()

    await dispatch(handler, delivery(attempt=2), OPTIONS, dead)

    assert [d.attempt for d in handler.deliveries] == [2, 3]
    assert dead.buried[0].attempts == 3


async def test_a_message_whose_consumers_kept_dying_is_buried_without_another_try() -> None:
    handler, dead = Recorder(), DeadLetters()

    await dispatch(handler, delivery(attempt=4), OPTIONS, dead)

    assert handler.deliveries == []
    [buried] = dead.buried
    assert (buried.attempts, buried.error) == (3, CRASHED_CONSUMERS)


async def test_a_handler_past_its_timeout_is_cancelled_and_counted_as_failed() -> None:
    cancelled: list[int] = []

    async def hang(delivery: Delivery) -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(delivery.attempt)
            raise

    dead = DeadLetters()
    await dispatch(hang, delivery(), OPTIONS, dead)

    assert cancelled == [1, 2, 3]
    assert dead.buried[0].error == "TimeoutError: the handler did not finish in time"


def test_the_delay_doubles_up_to_its_ceiling() -> None:
    options = dataclasses.replace(OPTIONS, retry_delay=0.1, max_retry_delay=0.5)

    assert [retry_delay(options, n) for n in (1, 2, 3, 4)] == [0.1, 0.2, 0.4, 0.5]
