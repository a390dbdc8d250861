"""Retries with capped exponential backoff and full jitter, limited by a retry budget.

A budget (as Finagle and Envoy do it) keeps retries to a share of the calls: each first
attempt deposits ``ratio`` tokens, each retry spends one, and a small reserve lets a quiet
process retry at all. During an outage retries stay near ``ratio`` times the calls instead of
multiplying the load by the number of attempts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """How often a call is tried, and how long to wait before each retry."""

    attempts: int = 3
    base_delay: float = 0.05
    max_delay: float = 1.0

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (from 1): full jitter, capped."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (retry - 1))
        return random.uniform(0, ceiling)  # noqa: S311 - jitter, not a secret


class RetryBudget:
    """Retries allowed as a share of calls: ``ratio`` per call, plus a ``reserve`` to start."""

    def __init__(self, *, ratio: float = 0.2, reserve: float = 10.0) -> None:
        self.ratio = ratio
        self._cap = reserve + 100 * ratio
        self._tokens = reserve
        self.calls = 0
        self.retries = 0
        self.refused = 0

    def deposit(self) -> None:
        """A first attempt was made."""
        self.calls += 1
        self._tokens = min(self._cap, self._tokens + self.ratio)

    def withdraw(self) -> bool:
        """Whether one more retry may be made now (and spend it if so)."""
        if self._tokens < 1:
            self.refused += 1
            return False
        self._tokens -= 1
        self.retries += 1
        return True
