"""Hand-written fakes of the ports, for the tests beside this file (imported, not fixtures)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Self

from inventory.domain.errors import ConcurrentChange
from inventory.domain.model import ReservationStatus, StockItem

if TYPE_CHECKING:
    from collections.abc import Collection
    from types import TracebackType

    from inventory.domain.model import Reservation


class Interference:
    """Makes the next ``saves`` saves fail as if another request had changed the rows first."""

    def __init__(self) -> None:
        self.saves = 0

    def check(self, what: str) -> None:
        if self.saves:
            self.saves -= 1
            raise ConcurrentChange(f"{what} changed meanwhile")


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class FakeStockRepository:
    """Stock items in a dict, copied in and out so only ``add`` and ``save`` change them."""

    def __init__(self, items: dict[str, StockItem], interference: Interference) -> None:
        self._items = items
        self._interference = interference

    async def get(self, sku: str) -> StockItem | None:
        return copy.deepcopy(self._items.get(sku))

    async def get_many(self, skus: Collection[str]) -> dict[str, StockItem]:
        return {sku: copy.deepcopy(self._items[sku]) for sku in skus if sku in self._items}

    async def add(self, item: StockItem) -> None:
        if item.sku in self._items:
            raise ConcurrentChange(f"stock item {item.sku} was added meanwhile")
        self._items[item.sku] = copy.deepcopy(item)

    async def save(self, item: StockItem) -> None:
        self._interference.check(item.sku)
        self._items[item.sku] = copy.deepcopy(item)


class FakeReservationRepository:
    def __init__(self, reservations: dict[str, Reservation], interference: Interference) -> None:
        self._reservations = reservations
        self._interference = interference

    async def get(self, reservation_id: str) -> Reservation | None:
        return copy.deepcopy(self._reservations.get(reservation_id))

    async def add(self, reservation: Reservation) -> None:
        if reservation.id in self._reservations:
            raise ConcurrentChange(f"reservation {reservation.id} was placed meanwhile")
        self._reservations[reservation.id] = copy.deepcopy(reservation)

    async def save(self, reservation: Reservation) -> None:
        self._interference.check(reservation.id)
        self._reservations[reservation.id] = copy.deepcopy(reservation)

    async def overdue(self, now: datetime, limit: int) -> list[str]:
        overdue = sorted(
            (r for r in self._reservations.values() if r.status is ReservationStatus.RESERVED),
            key=lambda r: r.expires_at,
        )
        return [r.id for r in overdue if r.expires_at <= now][:limit]


class FakeUnitOfWork:
    """Each ``async with`` works on a copy of the inventory that only ``commit`` keeps."""

    stock: FakeStockRepository
    reservations: FakeReservationRepository

    def __init__(self, *items: StockItem) -> None:
        self.interference = Interference()
        self._committed: tuple[dict[str, StockItem], dict[str, Reservation]] = (
            {item.sku: item for item in items},
            {},
        )

    async def __aenter__(self) -> Self:
        self._working = copy.deepcopy(self._committed)
        self.stock = FakeStockRepository(self._working[0], self.interference)
        self.reservations = FakeReservationRepository(self._working[1], self.interference)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        del self._working

    async def commit(self) -> None:
        self._committed = copy.deepcopy(self._working)

    def stocked(self, sku: str) -> StockItem:
        """The committed stock item of ``sku``, for assertions."""
        return copy.deepcopy(self._committed[0][sku])
