"""The runner drives checkouts in the background and resumes the unfinished ones."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from orders.domain.model import OrderStatus
from orders.entrypoints.checkout_runner import CheckoutRunner
from services.orders.tests.conftest import TEA
from services.orders.tests.unit.conftest import FakeUnitOfWork

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from orders.domain.model import Order
    from orders.service_layer.checkout import Checkout
    from services.orders.tests.unit.conftest import FakeStore

    Place = Callable[..., Awaitable[str]]


async def eventually(condition: Callable[[], bool]) -> None:
    for _ in range(400):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the condition did not come true within 2 s")


class GatedCheckout:
    """The real checkout, recording the orders it is asked to drive; drives wait for ``go``."""

    def __init__(self, checkout: Checkout, *, failing: frozenset[str] = frozenset()) -> None:
        self.driven: list[str] = []
        self.go = asyncio.Event()
        self._checkout = checkout
        self._failing = failing

    async def drive(self, order_id: str) -> Order:
        self.driven.append(order_id)
        await self.go.wait()
        if order_id in self._failing:
            raise RuntimeError("the database went away")
        return await self._checkout.drive(order_id)


def runner_for(
    checkout: Checkout | GatedCheckout, store: FakeStore, *, stop_grace: float = 0.05
) -> CheckoutRunner:
    return CheckoutRunner(
        checkout,  # type: ignore[arg-type]
        lambda: FakeUnitOfWork(store),
        concurrency=4,
        resume_interval=3600,
        stop_grace=stop_grace,
    )


async def test_at_start_the_runner_resumes_every_unsettled_order(
    checkout: Checkout, place: Place, store: FakeStore
) -> None:
    order_ids = [await place((TEA.product_id, 1)) for _ in range(3)]
    runner = runner_for(checkout, store)

    await runner.start()
    try:
        await eventually(
            lambda: all(store.orders[i].status is OrderStatus.CONFIRMED for i in order_ids)
        )
    finally:
        await runner.stop()


async def test_an_order_scheduled_while_it_is_driven_is_driven_once_more_after(
    checkout: Checkout, place: Place, store: FakeStore
) -> None:
    order_id = await place((TEA.product_id, 1))
    gated = GatedCheckout(checkout)
    runner = runner_for(gated, store)

    runner.schedule(order_id)
    await eventually(lambda: gated.driven == [order_id])
    runner.schedule(order_id)
    runner.schedule(order_id)
    gated.go.set()

    await eventually(lambda: gated.driven == [order_id, order_id])
    await asyncio.sleep(0.02)
    assert gated.driven == [order_id, order_id]
    await runner.stop()


async def test_one_order_failing_does_not_stop_the_others(
    checkout: Checkout, place: Place, store: FakeStore
) -> None:
    broken, good = await place((TEA.product_id, 1)), await place((TEA.product_id, 2))
    gated = GatedCheckout(checkout, failing=frozenset({broken}))
    gated.go.set()
    runner = runner_for(gated, store)

    runner.schedule(broken)
    runner.schedule(good)

    await eventually(lambda: store.orders[good].status is OrderStatus.CONFIRMED)
    assert store.orders[broken].status is OrderStatus.PENDING
    await runner.stop()


async def test_stopping_lets_a_drive_under_way_finish_within_the_grace(
    checkout: Checkout, place: Place, store: FakeStore
) -> None:
    order_id = await place((TEA.product_id, 1))
    gated = GatedCheckout(checkout)
    runner = runner_for(gated, store, stop_grace=2)
    runner.schedule(order_id)
    await eventually(lambda: gated.driven == [order_id])

    asyncio.get_running_loop().call_later(0.01, gated.go.set)
    await runner.stop()

    assert store.orders[order_id].status is OrderStatus.CONFIRMED


async def test_stopping_cancels_the_drives_that_outlast_the_grace_and_takes_no_more(
    checkout: Checkout, place: Place, store: FakeStore
) -> None:
    order_id = await place((TEA.product_id, 1))
    gated = GatedCheckout(checkout)
    runner = runner_for(gated, store)
    runner.schedule(order_id)
    await eventually(lambda: gated.driven == [order_id])

    async with asyncio.timeout(1):
        await runner.stop()
    runner.schedule(order_id)
    await asyncio.sleep(0.02)

    assert gated.driven == [order_id]
    assert store.orders[order_id].status is OrderStatus.PENDING


async def test_resuming_leaves_alone_the_orders_this_runner_is_driving(
    checkout: Checkout, place: Place, store: FakeStore
) -> None:
    order_id = await place((TEA.product_id, 1))
    gated = GatedCheckout(checkout)
    runner = runner_for(gated, store)
    runner.schedule(order_id)
    await eventually(lambda: gated.driven == [order_id])

    resumed = await runner.resume(idle_for=0)

    assert resumed == 0
    await runner.stop()
