"""Slow down password guessing: per account *and* source, a delay that doubles with each miss.

The gateway's per-IP rate limit stops one address from guessing fast. This counts the
failed sign-ins of each (account, source address) pair: after a few free misses each
further one doubles the wait before that source may try that account again (1 s, 2 s,
4 s ... at most ``max_delay``). The wait falls on the source that failed, never on the
account: a stranger failing on purpose slows down only themselves, and the owner signs in
from their own address as usual. A source that spreads its guesses over many addresses is
slowed by the account's total too, but only on sources that have already missed on it.

Counts live in this process's memory (identity runs one instance). They are bounded: when
full, forgotten first are the counts that ran out, then the smallest ones, so a flood of
other emails (one miss each) cannot push out a victim's count of many misses.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from identity.domain.errors import InvalidEmail
from identity.domain.model import normalise_email

if TYPE_CHECKING:
    from collections.abc import Callable

_Key = TypeVar("_Key")


class TooManySignInAttempts(Exception):  # noqa: N818 - a state of the account, like the others
    """This source missed this account's password too often lately; ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"too many failed sign-ins for this account from here: try again in {retry_after}s"
        )
        self.retry_after = retry_after


@dataclass
class _Misses:
    count: int
    last: datetime


class SignInThrottle:
    """``free_failures`` misses per (account, source), then a doubling delay per miss."""

    def __init__(
        self,
        clock: Callable[[], datetime],
        *,
        free_failures: int = 5,
        account_free_failures: int = 50,
        base_delay: timedelta = timedelta(seconds=1),
        max_delay: timedelta = timedelta(minutes=15),
        forget_after: timedelta = timedelta(hours=1),
        max_entries: int = 100_000,
    ) -> None:
        self._clock = clock
        self._free = free_failures
        self._account_free = account_free_failures
        self._base = base_delay
        self._max_delay = max_delay
        self._forget_after = forget_after
        self._max_entries = max_entries
        self._misses: dict[tuple[str, str], _Misses] = {}
        self._account_misses: dict[str, _Misses] = {}

    def check(self, email: str, source: str) -> None:
        """Raise TooManySignInAttempts if ``source`` must wait before trying this account."""
        account = _key(email)
        now = self._clock()
        pair = self._misses.get((account, source))
        waits = [self._wait(pair, self._free, now)]
        if pair is not None:  # the account's total weighs only on sources that missed on it
            waits.append(self._wait(self._account_misses.get(account), self._account_free, now))
        wait = max(waits)
        if wait > 0:
            raise TooManySignInAttempts(max(1, math.ceil(wait)))

    def failed(self, email: str, source: str) -> None:
        """Count a failed sign-in of this account from ``source``."""
        account = _key(email)
        now = self._clock()
        _count(self._misses, (account, source), now, self._forget_after)
        _count(self._account_misses, account, now, self._forget_after)
        self._bound(self._misses, now)
        self._bound(self._account_misses, now)

    def succeeded(self, email: str, source: str) -> None:
        """The account signed in from ``source``: that source's misses are forgiven."""
        self._misses.pop((_key(email), source), None)

    def _wait(self, misses: _Misses | None, free: int, now: datetime) -> float:
        if misses is None or misses.count < free:
            return 0.0
        doublings = min(misses.count - free, 32)
        delay: timedelta = min(self._base * (1 << doublings), self._max_delay)
        left: timedelta = misses.last + delay - now
        return left.total_seconds()

    def _bound(self, table: dict[_Key, _Misses], now: datetime) -> None:
        if len(table) <= self._max_entries:
            return
        horizon = now - self._forget_after
        for key in [key for key, misses in table.items() if misses.last <= horizon]:
            del table[key]
        excess = len(table) - self._max_entries
        if excess > 0:
            # A tenth at a time, the smallest counts first: rare, and never the big ones.
            drop = max(excess, self._max_entries // 10)
            for key in heapq.nsmallest(drop, table, key=lambda k: table[k].count):
                del table[key]


def _count(table: dict[_Key, _Misses], key: _Key, now: datetime, forget_after: timedelta) -> None:
    misses = table.get(key)
    if misses is None or misses.last <= now - forget_after:
        table[key] = _Misses(1, now)
    else:
        misses.count += 1
        misses.last = now


def _key(email: str) -> str:
    try:
        return normalise_email(email)
    except InvalidEmail:
        return email.strip().lower()
