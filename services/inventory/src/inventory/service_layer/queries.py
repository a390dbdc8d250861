"""Read-only questions about the inventory."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from inventory.domain.errors import InvalidStockItem, ReservationNotFound, UnknownSku
from inventory.domain.model import checked_reservation_id, checked_sku

if TYPE_CHECKING:
    from collections.abc import Iterable

    from inventory.domain.model import Reservation, StockItem
    from inventory.service_layer.ports import UnitOfWork

MAX_SKUS_PER_QUERY: Final = 100


async def stock_level(uow: UnitOfWork, sku: str) -> StockItem:
    """The stock item of ``sku``; raises UnknownSku."""
    checked_sku(sku)
    async with uow:
        item = await uow.stock.get(sku)
    if item is None:
        raise UnknownSku(sku)
    return item


async def stock_levels(uow: UnitOfWork, skus: Iterable[str]) -> list[StockItem]:
    """The stock items of those of ``skus`` the inventory has (at most 100), by SKU."""
    wanted = {checked_sku(sku) for sku in skus}
    if len(wanted) > MAX_SKUS_PER_QUERY:
        raise InvalidStockItem("skus", f"at most {MAX_SKUS_PER_QUERY} at once")
    async with uow:
        found = await uow.stock.get_many(wanted)
    return [found[sku] for sku in sorted(found)]


async def get_reservation(uow: UnitOfWork, reservation_id: str) -> Reservation:
    """The reservation with this id; raises ReservationNotFound."""
    async with uow:
        reservation = await uow.reservations.get(checked_reservation_id(reservation_id))
    if reservation is None:
        raise ReservationNotFound(reservation_id)
    return reservation
