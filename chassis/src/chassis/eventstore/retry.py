"""Retrying a command whose append lost a race: load again, decide again, a bounded number of
times. Whether to retry or to refuse is the caller's choice; this is the retrying half."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from chassis.eventstore.store import ConcurrencyConflict

T = TypeVar("T")


async def retry_on_conflict(command: Callable[[], Awaitable[T]], *, attempts: int = 3) -> T:
    """Run ``command`` until it does not raise ConcurrencyConflict, at most ``attempts`` times.

    ``command`` must open its own unit of work and load the aggregate afresh each time: the
    retry is a new decision on newer state (a debit that no longer fits is then refused by
    the aggregate), never the old events forced through. The last conflict is raised.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    for _ in range(attempts - 1):
        try:
            return await command()
        except ConcurrencyConflict:
            continue
    return await command()
