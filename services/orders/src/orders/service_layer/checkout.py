"""The checkout's steps against the other services: price, reserve stock, authorize,
capture, commit stock, and the compensations that undo them.

Every step is one call through a port, idempotent by ids derived from the order id, so a
step run again (a command delivered twice, a crash before its outcome was stored) has the
same effect once. ``Checkout.perform`` runs one step; the saga (``service_layer.saga``)
chains them through the bus.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, assert_never

from chassis import get_logger
from orders.domain.model import StepDone
from orders.domain.saga_definition import Step
from orders.service_layer.ports import NoUsableAnswer, StockLine

if TYPE_CHECKING:
    from contracts import Money
    from orders.domain.model import Order
    from orders.service_layer.ports import Billing, Catalog, Inventory

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
        *,
        catalog: Catalog,
        inventory: Inventory,
        billing: Billing,
        retry: RetryPolicy,
        reservation_ttl_seconds: int,
    ) -> None:
        self._catalog = catalog
        self._inventory = inventory
        self._billing = billing
        self._retry = retry
        self._reservation_ttl_seconds = reservation_ttl_seconds

    async def perform(self, step: Step, order: Order) -> StepDone:
        """Run one step against the other services, retrying transient failures.

        Raises CheckoutRefused when a service refuses for good, NoUsableAnswer when none
        of the attempts got a usable answer.
        """
        retry = 0
        while True:
            try:
                return await self._call(step, order)
            except NoUsableAnswer as failure:
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
            case Step.RETURN_STOCK:
                await self._inventory.return_stock(order.id)
            case Step.VOID_PAYMENT:
                if (held := await self._payment_of(order)) is not None:
                    await self._billing.void(held)
            case Step.REFUND_PAYMENT:
                if (held := await self._payment_of(order)) is not None:
                    await self._billing.refund(held)
            case _:
                assert_never(step)
        return StepDone(step)

    async def _payment_of(self, order: Order) -> str | None:
        """The payment to undo: the one authorized, or, when the authorizing timed out and
        its answer never came, whichever billing holds for the order (None: nothing)."""
        if order.payment_id is not None:
            return order.payment_id
        return await self._billing.held_payment(order.id)


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
