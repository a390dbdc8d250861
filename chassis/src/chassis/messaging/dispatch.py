"""One delivery through a handler: timeout, redelivery with backoff, dead letters.

Every adapter hands each message to :func:`dispatch` and acknowledges it once ``dispatch``
returns, so the attempts, the delays and the dead letters behave the same on every broker.
Redelivery after a failed attempt happens here, in the consumer, before the partition moves
on: that keeps the order of a key even on brokers that would requeue at the back.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable

from chassis.logs import get_logger
from chassis.messaging.bus import DeadLetter, DeadLetterSink, Handler, SubscribeOptions
from chassis.messaging.message import Delivery
from chassis.messaging.telemetry import ConsumerRun, consuming

_log = get_logger("chassis.messaging")

CRASHED_CONSUMERS = "every attempt ended with its consumer gone (crashed or killed mid-handler)"


def retry_delay(options: SubscribeOptions, attempt: int) -> float:
    """Seconds to wait after failed ``attempt`` (1-based) before the next one."""
    return float(min(options.retry_delay * 2 ** (attempt - 1), options.max_retry_delay))


def describe(error: BaseException) -> str:
    """A one-line account of a handler's failure, kept with a dead letter."""
    if isinstance(error, TimeoutError):
        return "TimeoutError: the handler did not finish in time"
    return f"{type(error).__name__}: {error}"[:2000]


async def dispatch(
    handler: Handler,
    delivery: Delivery,
    options: SubscribeOptions,
    dead_letters: DeadLetterSink,
    *,
    still_working: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Run ``handler`` until it succeeds or the message is buried; then it may be acknowledged.

    ``still_working`` is awaited before each redelivery, for brokers that redeliver a message
    whose consumer stays silent too long (NATS's ack wait).
    """
    with consuming(delivery) as run:
        await _attempts(handler, delivery, options, dead_letters, run, still_working=still_working)


async def _attempts(
    handler: Handler,
    delivery: Delivery,
    options: SubscribeOptions,
    dead_letters: DeadLetterSink,
    run: ConsumerRun,
    *,
    still_working: Callable[[], Awaitable[None]] | None,
) -> None:
    message = delivery.message
    attempt = delivery.attempt
    if attempt > options.max_attempts:
        # The broker counted more deliveries than attempts allowed: earlier consumers died
        # while handling it (a message that crashes its consumer every time). Stop here.
        await dead_letters.bury(DeadLetter(message, delivery.group, attempt - 1, CRASHED_CONSUMERS))
        run.dead_lettered(CRASHED_CONSUMERS)
        _log.error("message dead-lettered", event_type=message.event_type, error=CRASHED_CONSUMERS)
        return
    while True:
        try:
            async with asyncio.timeout(options.handler_timeout):
                await handler(dataclasses.replace(delivery, attempt=attempt))
        except Exception as error:  # noqa: BLE001 - any failure of a handler means "again"
            if attempt >= options.max_attempts:
                await dead_letters.bury(
                    DeadLetter(message, delivery.group, attempt, describe(error))
                )
                run.dead_lettered(describe(error))
                _log.error(
                    "message dead-lettered",
                    event_type=message.event_type,
                    attempts=attempt,
                    error=describe(error),
                )
                return
            _log.warning(
                "handler failed; delivering again",
                event_type=message.event_type,
                attempt=attempt,
                error=describe(error),
            )
            run.retried(attempt, describe(error))
            await asyncio.sleep(retry_delay(options, attempt))
            if still_working is not None:
                await still_working()
            attempt += 1
        else:
            return
