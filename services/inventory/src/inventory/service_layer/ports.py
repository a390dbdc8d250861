"""What the service layer needs from storage and time, stated as protocols."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from chassis import unit_of_work

if TYPE_CHECKING:
    from collections.abc import Collection
    from datetime import datetime

    from inventory.domain.model import Reservation, StockItem

Clock = Callable[[], "datetime"]
"""The current time, timezone-aware."""


class StockRepository(Protocol):
    """Stock items. Several processes change the same items at once, so a save applies
    the change made since loading as a difference, and only if the item stays valid."""

    async def get(self, sku: str) -> StockItem | None:
        """The stock item of this SKU, or None."""

    async def get_many(self, skus: Collection[str]) -> dict[str, StockItem]:
        """The stock items of those SKUs the inventory has, by SKU."""

    async def add(self, item: StockItem) -> None:
        """Store a new stock item; ConcurrentChange if another request added its SKU first."""

    async def save(self, item: StockItem) -> None:
        """Apply the change since loading; ConcurrentChange if, with what others changed
        meanwhile, fewer than zero units would be available or reserved."""


class ReservationRepository(Protocol):
    async def get(self, reservation_id: str) -> Reservation | None:
        """The reservation with this id, or None."""

    async def add(self, reservation: Reservation) -> None:
        """Store a new reservation; ConcurrentChange if its id was taken meanwhile."""

    async def save(self, reservation: Reservation) -> None:
        """Store a new status; ConcurrentChange if the status changed since loading."""

    async def overdue(self, now: datetime, limit: int) -> list[str]:
        """Ids of up to ``limit`` RESERVED reservations whose expiry time has passed."""


class UnitOfWork(unit_of_work.UnitOfWork, Protocol):
    """One transaction over the inventory; leaving it without ``commit`` rolls back.

    A unit of work may be entered again after it is left, for another transaction.
    """

    @property
    def stock(self) -> StockRepository: ...

    @property
    def reservations(self) -> ReservationRepository: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]
