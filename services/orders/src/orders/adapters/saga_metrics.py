"""The saga as Prometheus sees it: orders per status, the oldest unsettled one, step times."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Gauge, Histogram
from sqlalchemy import func, select

from chassis.metrics import PeriodicRefresh, age_seconds
from orders.adapters.orm import orders

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


class SagaMetrics:
    """Gauges read from the orders table every ``interval`` seconds, and the step histogram."""

    def __init__(self, registry: CollectorRegistry, *, interval: float = 5.0) -> None:
        self._interval = interval
        self._refreshing: PeriodicRefresh | None = None
        self.orders = Gauge(
            "orders_saga_orders",
            "Orders by status (PENDING, CONFIRMED, ...) and whether their saga has settled.",
            ["status", "settled"],
            registry=registry,
        )
        self.oldest_unsettled = Gauge(
            "orders_saga_oldest_unsettled_age_seconds",
            "Age of the oldest order whose saga has not settled (0 when none is open).",
            registry=registry,
        )
        self.steps = Histogram(
            "orders_saga_step_duration_seconds",
            "Time to run one saga command (a step or a compensation), by step and outcome.",
            ["step", "outcome"],
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )

    def step_ran(self, step: str, outcome: str, seconds: float) -> None:
        """One command of the saga was handled (``ok``) or will come again (``failed``)."""
        self.steps.labels(step, outcome).observe(seconds)

    def start(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        """Refresh the gauges in the background until :meth:`stop`."""
        self._refreshing = PeriodicRefresh(
            lambda: self.refresh(sessionmaker), interval=self._interval, name="saga-metrics"
        )
        self._refreshing.start()

    async def stop(self) -> None:
        if self._refreshing is not None:
            await self._refreshing.stop()
            self._refreshing = None

    async def refresh(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        """Read the counts and the oldest unsettled order once."""
        async with sessionmaker() as session:
            counts = await session.execute(
                select(orders.c.status, orders.c.settled, func.count()).group_by(
                    orders.c.status, orders.c.settled
                )
            )
            oldest = await session.scalar(
                select(func.min(orders.c.created_at)).where(orders.c.settled.is_(False))
            )
        self.orders.clear()
        for status, settled, count in counts.all():
            self.orders.labels(status, str(bool(settled)).lower()).set(count)
        self.oldest_unsettled.set(age_seconds(oldest))
