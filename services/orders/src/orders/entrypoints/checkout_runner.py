"""Checkouts in the background of this process: one asyncio task per order being driven."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from chassis import get_logger
from chassis.requests import request_id_var

if TYPE_CHECKING:
    from orders.service_layer.checkout import Checkout
    from orders.service_layer.ports import UnitOfWorkFactory

_log = get_logger("orders.checkout")


class CheckoutRunner:
    """Drives checkouts in the background, and resumes those left unfinished.

    The routes hand it the orders they place or cancel. At start-up it resumes every order
    the checkout still has work on, since this process (or another) may have died in the
    middle of one; after that, every ``resume_interval`` seconds, those nobody has touched
    for that long, since the service that was unavailable may be back. Two replicas may
    drive one order at once: the steps are idempotent and every change to the order is a
    compare-and-set on its version, so the worst case is a call made twice to one effect.
    """

    def __init__(
        self,
        checkout: Checkout,
        uow_factory: UnitOfWorkFactory,
        *,
        concurrency: int,
        resume_interval: float,
        stop_grace: float,
    ) -> None:
        self._checkout = checkout
        self._uow_factory = uow_factory
        self._resume_interval = resume_interval
        self._stop_grace = stop_grace
        self._stopping = False
        # Bounds the calls a burst of orders, or a resumption of many, makes on the others.
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.resume(idle_for=0)
        self._sweeper = asyncio.create_task(self._sweep(), name="checkout-resume")

    async def stop(self) -> None:
        """Let the drives under way finish for up to ``stop_grace`` seconds, then cancel
        them; an order stopped in the middle of a step is resumed at the next start."""
        self._stopping = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        drives = list(self._tasks.values())
        if drives:
            _, unfinished = await asyncio.wait(drives, timeout=self._stop_grace)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)

    def schedule(self, order_id: str) -> None:
        """Drive this order soon; if it is being driven now, once more after that."""
        if self._stopping:
            return
        if order_id in self._tasks:
            # The drive under way may have read the order before the change that asks again.
            self._again.add(order_id)
            return
        self._tasks[order_id] = asyncio.create_task(
            self._drive(order_id), name=f"checkout {order_id}"
        )

    async def resume(self, *, idle_for: float) -> int:
        """Drive every unsettled order nobody changed for ``idle_for`` seconds; how many."""
        idle_since = datetime.now(UTC) - timedelta(seconds=idle_for)
        async with self._uow_factory() as uow:
            order_ids = await uow.orders.unsettled(idle_since=idle_since)
        resumed = [order_id for order_id in order_ids if order_id not in self._tasks]
        for order_id in resumed:
            self.schedule(order_id)
        if resumed:
            _log.info("resuming checkouts", count=len(resumed))
        return len(resumed)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self._resume_interval)
            try:
                await self.resume(idle_for=self._resume_interval)
            except Exception:  # noqa: BLE001 - the sweep must outlive a database hiccup
                _log.exception("resuming checkouts failed")

    async def _drive(self, order_id: str) -> None:
        if request_id_var.get() is None:
            # A resumed drive has no request to take an id from: one id per drive ties its
            # calls together in the logs of every service it calls.
            request_id_var.set(uuid.uuid4().hex)
        try:
            while True:
                self._again.discard(order_id)
                async with self._slots:
                    await self._drive_once(order_id)
                if self._stopping or order_id not in self._again:
                    return
        finally:
            del self._tasks[order_id]

    async def _drive_once(self, order_id: str) -> None:
        try:
            order = await self._checkout.drive(order_id)
        except Exception:  # noqa: BLE001 - logged; the next sweep resumes the order
            # One order's trouble must not stop the others.
            _log.exception("checkout failed", order_id=order_id)
            return
        _log.info(
            "checkout driven",
            order_id=order.id,
            status=order.status,
            settled=order.settled,
            last_error=order.last_error,
        )
