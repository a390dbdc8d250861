"""The pipeline every outgoing call goes through: timeout → retry → breaker → bulkhead.

One :class:`Pipeline` per dependency (an upstream service, a payment provider, the database),
made by the process's :class:`Resilience` from its settings. The outermost timeout bounds
the whole call, retries included, and never outlasts the request's deadline; each attempt
passes the breaker (fail fast while the dependency is known to be down) and then the
bulkhead (no more than so many calls out at once). A refusal by the breaker or the bulkhead
is raised at once and means nothing was sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field

from chassis.resilience import deadline
from chassis.resilience.breaker import CircuitBreaker
from chassis.resilience.bulkhead import Bulkhead, BulkheadFull
from chassis.resilience.retry import Backoff, RetryBudget

T = TypeVar("T")


class DependencyPolicy(BaseModel):
    """How calls to one dependency are bounded; every field may be set per dependency."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timeout: float = Field(default=10.0, gt=0, description="Seconds for a call, retries included.")
    attempts: int = Field(default=3, ge=1, le=10, description="Tries of a call that is safe.")
    base_delay: float = Field(default=0.05, ge=0, description="First backoff, seconds.")
    max_delay: float = Field(default=1.0, ge=0, description="Longest backoff, seconds.")
    failure_threshold: int = Field(
        default=5, ge=1, description="Consecutive failures that open the breaker."
    )
    reset_timeout: float = Field(
        default=5.0, gt=0, description="Seconds the breaker stays open before probing."
    )
    half_open_probes: int = Field(
        default=1, ge=1, description="Calls let through at once, and successes needed, to close."
    )
    max_concurrent: int = Field(default=64, ge=1, description="Calls out at once (bulkhead).")
    max_waiting: int = Field(default=64, ge=0, description="Calls that may wait for a slot.")
    max_wait: float = Field(default=0.5, ge=0, description="Seconds a call waits for a slot.")

    def merged(self, overrides: DependencyPolicy | None) -> DependencyPolicy:
        """This policy with the fields ``overrides`` sets explicitly."""
        if overrides is None:
            return self
        return self.model_copy(update=overrides.model_dump(exclude_unset=True))


def _never(_: BaseException) -> bool:
    return False


class Pipeline:
    """The resilience of one dependency: its breaker, its bulkhead and the shared budget."""

    def __init__(
        self,
        dependency: str,
        policy: DependencyPolicy,
        budget: RetryBudget,
        *,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.dependency = dependency
        self.policy = policy
        self.budget = budget
        self.backoff = Backoff(policy.attempts, policy.base_delay, policy.max_delay)
        self.breaker = breaker or CircuitBreaker(
            dependency,
            failure_threshold=policy.failure_threshold,
            reset_timeout=policy.reset_timeout,
            half_open_probes=policy.half_open_probes,
        )
        self.bulkhead = Bulkhead(
            dependency,
            max_concurrent=policy.max_concurrent,
            max_waiting=policy.max_waiting,
            max_wait=policy.max_wait,
        )
        self.retries = 0

    async def call(
        self,
        attempt: Callable[[], Awaitable[T]],
        *,
        is_failure: Callable[[BaseException], bool],
        retry_on: Callable[[BaseException], bool] = _never,
        timeout: float | None = None,  # noqa: ASYNC109 - the pipeline's own timeout, applied here
    ) -> T:
        """``attempt()`` through the pipeline; its own exceptions pass through unchanged.

        ``is_failure`` says which exceptions count against the breaker (a timeout, a refused
        connection — not a refusal the dependency answered); ``retry_on`` which may be tried
        again: only those of calls that are safe to repeat (reads, or writes with an
        idempotency key). Raises DeadlineExceeded when the time is up (the request's deadline
        or ``timeout``, default the policy's), CircuitOpen or BulkheadFull when nothing was
        sent.
        """
        deadline.check()
        seconds = deadline.bounded(timeout or self.policy.timeout)
        self.budget.deposit()
        try:
            async with asyncio.timeout(seconds):
                return await self._with_retries(attempt, is_failure, retry_on)
        except TimeoutError as error:
            if isinstance(error, deadline.DeadlineExceeded):
                raise
            raise deadline.DeadlineExceeded(
                f"{self.dependency}: no answer within {seconds:.3f}s"
            ) from error

    async def _with_retries(
        self,
        attempt: Callable[[], Awaitable[T]],
        is_failure: Callable[[BaseException], bool],
        retry_on: Callable[[BaseException], bool],
    ) -> T:
        for retry in self._retries():
            try:
                return await self.once(attempt, is_failure)
            except Exception as error:
                if (
                    retry >= self.backoff.attempts
                    or not retry_on(error)
                    or not self.budget.withdraw()
                ):
                    raise
            self.retries += 1
            await asyncio.sleep(self.backoff.delay(retry))
        raise AssertionError("unreachable")  # pragma: no cover

    def _retries(self) -> Iterator[int]:
        yield from range(1, self.backoff.attempts + 1)

    async def once(
        self, attempt: Callable[[], Awaitable[T]], is_failure: Callable[[BaseException], bool]
    ) -> T:
        """One try through the breaker and the bulkhead, no timeout and no retry: for a
        caller that retries across several pipelines itself (a replica each)."""
        self.breaker.acquire()
        try:
            async with self.bulkhead.slot():
                try:
                    result = await attempt()
                except asyncio.CancelledError:
                    self.breaker.record_ignored()
                    raise
                except Exception as error:
                    # An answer that is a refusal still shows the dependency is alive.
                    if is_failure(error):
                        self.breaker.record_failure()
                    else:
                        self.breaker.record_success()
                    raise
        except BulkheadFull:
            self.breaker.record_ignored()
            raise
        self.breaker.record_success()
        return result


class Resilience:
    """The pipelines of one process, one per dependency, sharing one retry budget."""

    def __init__(
        self,
        defaults: DependencyPolicy | None = None,
        overrides: dict[str, DependencyPolicy] | None = None,
        *,
        retry_ratio: float = 0.2,
    ) -> None:
        self.defaults = defaults or DependencyPolicy()
        self._overrides = overrides or {}
        self.budget = RetryBudget(ratio=retry_ratio)
        self._pipelines: dict[str, Pipeline] = {}

    def pipeline(
        self,
        dependency: str,
        defaults: DependencyPolicy | None = None,
        *,
        family: str | None = None,
    ) -> Pipeline:
        """The pipeline of ``dependency`` (made on first use): ``defaults`` (the caller's
        own, else the process's), with what the settings set for its ``family`` (an
        upstream, for one of its replicas), then for this dependency itself."""
        existing = self._pipelines.get(dependency)
        if existing is not None:
            return existing
        policy = (defaults or self.defaults).merged(
            None if family is None else self._overrides.get(family)
        )
        policy = policy.merged(self._overrides.get(dependency))
        made = self._pipelines[dependency] = Pipeline(dependency, policy, self.budget)
        return made

    @property
    def pipelines(self) -> list[Pipeline]:
        return list(self._pipelines.values())
