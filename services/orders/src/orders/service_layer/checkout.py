"""The checkout, orchestrated: price, reserve stock, authorize, capture, commit stock.

Every step is one call through a port, idempotent by ids derived from the order id, and the
order records each outcome before the next step starts. Driving an order again therefore
continues where it stopped: at most the step whose outcome was lost is repeated, to the same
effect. A refusal rejects the order and the compensations undo what was done; a failure that
outlasts the retries leaves the order as it is, with ``last_error``, to be driven again.

``Checkout.perform`` runs one step; ``Checkout.drive`` chains them in this process. A durable
saga can take over the chaining and keep the steps.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, assert_never

from chassis import get_logger
from chassis.upstream import UpstreamFailure
from orders.domain.errors import CheckoutRefused, OrderMovedOn, OrderNotFound, StaleOrder
from orders.domain.model import CHECKOUT, EFFECTFUL, Step, StepDone
from orders.service_layer.ports import StockLine

if TYPE_CHECKING:
    from collections.abc import Callable

    from contracts import Money
    from orders.domain.model import Order
    from orders.service_layer.ports import Billing, Catalog, Inventory, UnitOfWorkFactory

# A checkout takes about a dozen moves; far more means two writers keep undoing each other.
MAX_MOVES: Final = 100
MAX_CONFLICTS: Final = 10

_log = get_logger("orders.checkout")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often, and after how long, a step is tried again after a transient failure."""

    attempts: int = 4
    base_delay: float = 0.2
    max_delay: float = 2.0

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (counting from 1)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (retry - 1))
        # Full jitter: replicas retrying after the same outage spread out instead of in step.
        return random.uniform(0, ceiling)  # noqa: S311 - jitter, not a secret


class Checkout:
    """Takes orders through the checkout's steps, and through the compensations if need be."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        *,
        catalog: Catalog,
        inventory: Inventory,
        billing: Billing,
        retry: RetryPolicy,
        reservation_ttl_seconds: int,
    ) -> None:
        self._uow_factory = uow_factory
        self._catalog = catalog
        self._inventory = inventory
        self._billing = billing
        self._retry = retry
        self._reservation_ttl_seconds = reservation_ttl_seconds

    async def drive(self, order_id: str) -> Order:
        """Take the order as far as it can go now.

        That is CONFIRMED, or REJECTED/CANCELLED with every compensation done; or, when
        another service stays unavailable, as far as it got, with ``last_error`` set.
        """
        order = await self._load(order_id)
        for _ in range(MAX_MOVES):
            order, more = await self._move(order)
            if not more:
                return order
        raise RuntimeError(f"the checkout of order {order_id} made no headway in {MAX_MOVES} moves")

    async def perform(self, step: Step, order: Order) -> StepDone:
        """Run one step against the other services, retrying transient failures.

        Raises CheckoutRefused when a service refuses for good, UpstreamFailure when none
        of the attempts got a usable answer.
        """
        retry = 0
        while True:
            try:
                return await self._call(step, order)
            except UpstreamFailure as failure:
                retry += 1
                if not failure.transient or retry >= self._retry.attempts:
                    raise
                _log.warning(
                    "checkout step failed, retrying",
                    order_id=order.id,
                    step=step,
                    retry=retry,
                    error=str(failure),
                )
                await asyncio.sleep(self._retry.delay(retry))

    async def _move(self, order: Order) -> tuple[Order, bool]:
        """Make one move; the order after it, and whether there is more to do now."""
        if order.awaiting_confirmation:
            return await self._change(order.id, lambda o: o.confirm(_now())), True
        step = order.next_step()
        if step is None:
            return order, False
        if step in EFFECTFUL and order.step_in_progress is not step:
            return await self._change(order.id, lambda o: o.begin(step, _now())), True
        return await self._run(step, order)

    async def _run(self, step: Step, order: Order) -> tuple[Order, bool]:
        """Perform the step and record its outcome; False if it failed."""
        try:
            done = await self.perform(step, order)
            return await self._change(order.id, lambda o: o.record_done(done, _now())), True
        except CheckoutRefused as refusal:
            if step not in CHECKOUT:
                # What was done must be undone whatever the answer: it stays due, for the
                # next drive or for someone to look at.
                return await self._fail(order, step, refusal.reason), False
            reason = refusal.reason
            return await self._change(order.id, lambda o: o.refuse(step, reason, _now())), True
        except UpstreamFailure as failure:
            return await self._fail(order, step, str(failure)), False

    async def _fail(self, order: Order, step: Step, error: str) -> Order:
        _log.warning("checkout step failed", order_id=order.id, step=step, error=error)
        return await self._change(order.id, lambda o: o.fail(step, error, _now()))

    async def _call(self, step: Step, order: Order) -> StepDone:
        match step:
            case Step.PRICE:
                products = {
                    line.product_id: await self._catalog.product(line.product_id)
                    for line in order.lines
                }
                return StepDone(step, products=products)
            case Step.RESERVE_STOCK:
                await self._inventory.reserve(
                    order.id, _stock_lines(order), ttl_seconds=self._reservation_ttl_seconds
                )
            case Step.AUTHORIZE_PAYMENT:
                payment_id = await self._billing.authorize(
                    order.id, _amount(order), order.card_token, customer_id=order.customer_id
                )
                return StepDone(step, payment_id=payment_id)
            case Step.CAPTURE_PAYMENT:
                await self._billing.capture(_payment(order))
            case Step.COMMIT_STOCK:
                await self._inventory.commit(order.id)
            case Step.RELEASE_STOCK:
                await self._inventory.release(order.id)
            case Step.VOID_PAYMENT:
                await self._billing.void(_payment(order))
            case Step.REFUND_PAYMENT:
                await self._billing.refund(_payment(order))
            case _:
                assert_never(step)
        return StepDone(step)

    async def _load(self, order_id: str) -> Order:
        async with self._uow_factory() as uow:
            order = await uow.orders.get(order_id)
        if order is None:
            raise OrderNotFound(order_id)
        return order

    async def _change(self, order_id: str, change: Callable[[Order], None]) -> Order:
        """Load, change and save the newest version; a change that no longer applies is
        dropped and the newest version answered."""
        for _ in range(MAX_CONFLICTS):
            async with self._uow_factory() as uow:
                order = await uow.orders.get(order_id)
                if order is None:
                    raise OrderNotFound(order_id)
                try:
                    change(order)
                except OrderMovedOn:
                    return order
                try:
                    await uow.orders.save(order)
                except StaleOrder:
                    # Another driver, or the customer, wrote first: apply it to their version.
                    continue
                await uow.commit()
                return order
        raise StaleOrder(order_id)


def _now() -> datetime:
    return datetime.now(UTC)


def _stock_lines(order: Order) -> list[StockLine]:
    lines = [StockLine(line.sku, line.quantity) for line in order.lines if line.sku is not None]
    if len(lines) != len(order.lines):
        raise ValueError(f"order {order.id} is not priced yet")
    return lines


def _amount(order: Order) -> Money:
    total = order.total
    if total is None:
        raise ValueError(f"order {order.id} is not priced yet")
    return total


def _payment(order: Order) -> str:
    if order.payment_id is None:
        raise ValueError(f"order {order.id} has no authorized payment")
    return order.payment_id
