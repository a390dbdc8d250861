"""The resilience pipeline: breaker states, bulkhead limits, retries within a budget, timeouts."""

from __future__ import annotations

import asyncio

import pytest

from chassis.resilience import (
    BreakerState,
    Bulkhead,
    BulkheadFull,
    CircuitBreaker,
    CircuitOpen,
    DeadlineExceeded,
    DependencyPolicy,
    Resilience,
    RetryBudget,
    deadline,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Unwell(Exception):  # noqa: N818 - the dependency's state
    pass


class Refused(Exception):  # noqa: N818 - the dependency's answer
    pass


def _is_unwell(error: BaseException) -> bool:
    return isinstance(error, Unwell)


def test_a_breaker_opens_after_the_threshold_of_consecutive_failures() -> None:
    breaker = CircuitBreaker("billing", failure_threshold=3, reset_timeout=5, clock=Clock())
    for _ in range(2):
        breaker.acquire()
        breaker.record_failure()
    breaker.acquire()
    breaker.record_success()  # a success in between starts the count again
    for _ in range(2):
        breaker.acquire()
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.acquire()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpen) as refused:
        breaker.acquire()
    assert refused.value.retry_after == pytest.approx(5)
    assert breaker.rejected == 1


def test_a_half_open_breaker_lets_only_its_probes_through_and_closes_on_their_success() -> None:
    clock = Clock()
    breaker = CircuitBreaker(
        "inventory", failure_threshold=1, reset_timeout=5, half_open_probes=2, clock=clock
    )
    breaker.acquire()
    breaker.record_failure()
    clock.now += 5
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.acquire()
    breaker.acquire()
    with pytest.raises(CircuitOpen):
        breaker.acquire()  # a third caller while two probes are out
    breaker.record_success()
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED


def test_a_failed_probe_opens_the_breaker_again_for_a_full_reset_timeout() -> None:
    clock = Clock()
    changes: list[tuple[str, str]] = []
    breaker = CircuitBreaker(
        "payment-primary",
        failure_threshold=1,
        reset_timeout=5,
        clock=clock,
        on_change=lambda _, old, new: changes.append((old, new)),
    )
    breaker.acquire()
    breaker.record_failure()
    clock.now += 6
    breaker.acquire()
    breaker.record_failure()
    clock.now += 4
    assert breaker.state is BreakerState.OPEN
    assert changes == [("closed", "open"), ("open", "half-open"), ("half-open", "open")]


async def test_a_full_bulkhead_refuses_at_once_when_nobody_may_wait() -> None:
    bulkhead = Bulkhead("catalog", max_concurrent=2)
    release = asyncio.Event()

    async def hold() -> None:
        async with bulkhead.slot():
            await release.wait()

    holders = [asyncio.create_task(hold()) for _ in range(2)]
    await asyncio.sleep(0)
    assert bulkhead.in_flight == 2
    with pytest.raises(BulkheadFull):
        async with bulkhead.slot():
            pass
    release.set()
    await asyncio.gather(*holders)
    assert (bulkhead.in_flight, bulkhead.rejected) == (0, 1)


async def test_a_bulkhead_lets_a_caller_wait_only_so_long_for_a_slot() -> None:
    bulkhead = Bulkhead("catalog", max_concurrent=1, max_waiting=1, max_wait=0.05)
    release = asyncio.Event()

    async def hold() -> None:
        async with bulkhead.slot():
            await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(BulkheadFull):
        async with bulkhead.slot():
            pass
    assert 0.04 <= loop.time() - started < 1
    release.set()
    await holder
    async with bulkhead.slot():  # free again
        assert bulkhead.in_flight == 1


def test_the_retry_budget_allows_about_a_fifth_of_the_calls_as_retries() -> None:
    budget = RetryBudget(ratio=0.2, reserve=0)
    allowed = 0
    for _ in range(1000):
        budget.deposit()
        allowed += budget.withdraw() + budget.withdraw()  # every call wants two retries
    assert 195 <= allowed <= 200
    assert budget.refused == 2000 - allowed


async def test_a_safe_call_is_retried_until_it_succeeds() -> None:
    pipeline = Resilience(DependencyPolicy(attempts=3, base_delay=0)).pipeline("catalog")
    tries = 0

    async def flaky() -> str:
        nonlocal tries
        tries += 1
        if tries < 3:
            raise Unwell
        return "priced"

    assert await pipeline.call(flaky, is_failure=_is_unwell, retry_on=_is_unwell) == "priced"
    assert (tries, pipeline.retries) == (3, 2)


async def test_a_call_that_is_not_safe_to_repeat_is_tried_once() -> None:
    pipeline = Resilience(DependencyPolicy(attempts=3, base_delay=0)).pipeline("billing")
    tries = 0

    async def unwell() -> None:
        nonlocal tries
        tries += 1
        raise Unwell

    with pytest.raises(Unwell):
        await pipeline.call(unwell, is_failure=_is_unwell)
    assert tries == 1


async def test_an_answered_refusal_does_not_count_against_the_breaker() -> None:
    pipeline = Resilience(DependencyPolicy(failure_threshold=1)).pipeline("billing")

    async def refuse() -> None:
        raise Refused

    for _ in range(3):
        with pytest.raises(Refused):
            await pipeline.call(refuse, is_failure=_is_unwell)
    assert pipeline.breaker.state is BreakerState.CLOSED


async def test_an_open_breaker_fails_calls_fast_without_calling() -> None:
    pipeline = Resilience(DependencyPolicy(failure_threshold=2, attempts=1)).pipeline("billing")
    calls = 0

    async def unwell() -> None:
        nonlocal calls
        calls += 1
        raise Unwell

    for _ in range(2):
        with pytest.raises(Unwell):
            await pipeline.call(unwell, is_failure=_is_unwell)
    with pytest.raises(CircuitOpen):
        await pipeline.call(unwell, is_failure=_is_unwell)
    assert calls == 2


async def test_a_hung_dependency_is_given_up_on_at_the_timeout_and_counts_as_a_failure() -> None:
    pipeline = Resilience(DependencyPolicy(timeout=0.05, failure_threshold=1)).pipeline("billing")

    async def hang() -> None:
        await asyncio.sleep(10)

    with pytest.raises(DeadlineExceeded):
        await pipeline.call(hang, is_failure=_is_unwell)
    # The outer timeout cancelled the attempt: the breaker learns nothing from a cancel.
    assert pipeline.breaker.state is BreakerState.CLOSED
    assert pipeline.bulkhead.in_flight == 0


async def test_a_call_never_outlasts_the_requests_deadline() -> None:
    pipeline = Resilience(DependencyPolicy(timeout=10)).pipeline("inventory")
    loop = asyncio.get_running_loop()
    started = loop.time()
    with deadline.within(0.05), pytest.raises(DeadlineExceeded):
        await pipeline.call(lambda: asyncio.sleep(5), is_failure=_is_unwell)
    assert loop.time() - started < 1


async def test_work_whose_deadline_has_passed_is_not_started() -> None:
    pipeline = Resilience().pipeline("inventory")
    called = False

    async def work() -> None:
        nonlocal called
        called = True

    with deadline.within(0.0), pytest.raises(DeadlineExceeded):
        await pipeline.call(work, is_failure=_is_unwell)
    assert not called


def test_settings_override_a_dependencys_policy_field_by_field() -> None:
    resilience = Resilience(
        DependencyPolicy(timeout=3),
        {"billing": DependencyPolicy.model_validate({"failure_threshold": 2})},
    )
    billing = resilience.pipeline("billing")
    assert (billing.policy.timeout, billing.policy.failure_threshold) == (3, 2)
    assert resilience.pipeline("billing") is billing
