"""A circuit breaker: stop calling a dependency that keeps failing, then probe it carefully.

CLOSED counts consecutive failures; at ``failure_threshold`` it turns OPEN and every call
fails at once (:class:`CircuitOpen`) for ``reset_timeout`` seconds. Then HALF_OPEN lets at
most ``half_open_probes`` calls through at a time: as many successes close it, one failure
opens it again. Each change of state is one log line and a callback (metrics read the state
when scraped).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

from chassis.logs import get_logger

_log = get_logger("chassis.resilience")


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitOpen(Exception):  # noqa: N818 - a state of the dependency, not a bug of ours
    """The breaker refused the call: nothing was sent. ``retry_after``: seconds until a probe."""

    def __init__(self, dependency: str, retry_after: float) -> None:
        super().__init__(f"{dependency}: circuit open, next probe in {retry_after:.1f}s")
        self.dependency = dependency
        self.retry_after = retry_after


class CircuitBreaker:
    """The breaker of one dependency; ``acquire`` before a call, then report how it went."""

    def __init__(
        self,
        dependency: str,
        *,
        failure_threshold: int = 5,
        reset_timeout: float = 5.0,
        half_open_probes: int = 1,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[CircuitBreaker, BreakerState, BreakerState], None] | None = None,
    ) -> None:
        self.dependency = dependency
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.half_open_probes = half_open_probes
        self._clock = clock
        self._on_change = on_change
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probes_out = 0
        self._probe_successes = 0
        self.rejected = 0
        self.transitions = 0

    @property
    def state(self) -> BreakerState:
        """The state now; an OPEN breaker whose reset timeout passed is HALF_OPEN."""
        if (
            self._state is BreakerState.OPEN
            and self._clock() - self._opened_at >= self.reset_timeout
        ):
            self._move(BreakerState.HALF_OPEN)
        return self._state

    @property
    def admits(self) -> bool:
        """Whether ``acquire`` would let a call through now (asking takes no probe)."""
        state = self.state
        return state is BreakerState.CLOSED or (
            state is BreakerState.HALF_OPEN and self._probes_out < self.half_open_probes
        )

    def acquire(self) -> None:
        """Let one call through, or raise CircuitOpen (nothing is sent then)."""
        state = self.state
        if state is BreakerState.CLOSED:
            return
        if state is BreakerState.HALF_OPEN and self._probes_out < self.half_open_probes:
            self._probes_out += 1
            return
        self.rejected += 1
        retry_after = max(0.0, self.reset_timeout - (self._clock() - self._opened_at))
        raise CircuitOpen(self.dependency, retry_after)

    def record_success(self) -> None:
        """The call got a usable answer."""
        if self._state is BreakerState.HALF_OPEN:
            self._probes_out = max(0, self._probes_out - 1)
            self._probe_successes += 1
            if self._probe_successes >= self.half_open_probes:
                self._move(BreakerState.CLOSED)
            return
        self._failures = 0

    def record_failure(self) -> None:
        """The call failed in a way that says the dependency is unwell (not a refusal)."""
        if self._state is BreakerState.HALF_OPEN:
            self._move(BreakerState.OPEN)
            return
        self._failures += 1
        if self._state is BreakerState.CLOSED and self._failures >= self.failure_threshold:
            self._move(BreakerState.OPEN)

    def record_ignored(self) -> None:
        """The call ended without telling anything about the dependency (it was cancelled)."""
        if self._state is BreakerState.HALF_OPEN:
            self._probes_out = max(0, self._probes_out - 1)

    def _move(self, state: BreakerState) -> None:
        previous, self._state = self._state, state
        self.transitions += 1
        self._failures = 0
        self._probes_out = 0
        self._probe_successes = 0
        if state is BreakerState.OPEN:
            self._opened_at = self._clock()
        _log.warning(
            "circuit breaker changed state",
            dependency=self.dependency,
            previous=str(previous),
            state=str(state),
        )
        if self._on_change is not None:
            self._on_change(self, previous, state)
