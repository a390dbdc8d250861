"""One handler per command: load, act, save.

Replicas change the same stock at once. A save checks in the database that it loses no
other change and breaks no invariant (see the ports); one refused as a ConcurrentChange
sends the handler back to loading, at most MAX_ATTEMPTS times in all.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final, ParamSpec, TypeVar

from inventory.domain.errors import ConcurrentChange, InvalidStockItem, ReservationNotFound
from inventory.domain.model import (
    Reservation,
    StockItem,
    checked_reservation_id,
    checked_sku,
    reservation_lines,
    reservation_ttl,
)

if TYPE_CHECKING:
    from inventory.domain.commands import (
        AdjustStock,
        CommitReservation,
        ExpireReservations,
        ImportStock,
        ReleaseReservation,
        ReserveStock,
        ReturnReservation,
    )
    from inventory.service_layer.ports import Clock, UnitOfWork

MAX_ATTEMPTS: Final = 5

P = ParamSpec("P")
T = TypeVar("T")


def _retried(handler: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    @functools.wraps(handler)
    async def attempt(*args: P.args, **kwargs: P.kwargs) -> T:
        for _ in range(MAX_ATTEMPTS - 1):
            try:
                return await handler(*args, **kwargs)
            except ConcurrentChange:
                continue
        return await handler(*args, **kwargs)

    return attempt


@_retried
async def adjust_stock(command: AdjustStock, uow: UnitOfWork) -> StockItem:
    """Set or add to a SKU's units on hand; a SKU the inventory lacks starts at zero."""
    sku = checked_sku(command.sku)
    if (command.set_on_hand is None) == (command.add is None):
        raise InvalidStockItem("adjustment", "give either set_on_hand or add")
    async with uow:
        stored = await uow.stock.get(sku)
        item = stored or StockItem(sku=sku)
        if command.set_on_hand is not None:
            item.count(command.set_on_hand)
        elif command.add is not None:
            item.add(command.add)
        await (uow.stock.save(item) if stored else uow.stock.add(item))
        await uow.commit()
    return item


@_retried
async def reserve_stock(command: ReserveStock, uow: UnitOfWork, clock: Clock) -> Reservation:
    """Hold stock for every line, or for none; a repeat of a reservation returns it."""
    reservation_id = checked_reservation_id(command.reservation_id)
    lines = reservation_lines(command.lines)
    ttl = reservation_ttl(command.ttl_seconds)
    async with uow:
        existing = await uow.reservations.get(reservation_id)
        if existing is not None:
            existing.require_lines(lines)
            return existing
        stock = await uow.stock.get_many([line.sku for line in lines])
        reservation = Reservation.place(
            id=reservation_id, lines=lines, expires_at=clock() + ttl, stock=stock
        )
        # The reservation first: its id is what concurrent repeats of this request clash on.
        await uow.reservations.add(reservation)
        for item in stock.values():
            await uow.stock.save(item)
        await uow.commit()
    return reservation


@_retried
async def commit_reservation(
    command: CommitReservation, uow: UnitOfWork, clock: Clock
) -> Reservation:
    """The reserved stock leaves the shelf."""
    async with uow:
        reservation, stock = await _reservation_and_stock(uow, command.reservation_id)
        reservation.commit(clock(), stock)
        await _save(uow, reservation, stock)
        await uow.commit()
    return reservation


@_retried
async def release_reservation(command: ReleaseReservation, uow: UnitOfWork) -> Reservation:
    """The reserved stock goes back on the shelf."""
    async with uow:
        reservation, stock = await _reservation_and_stock(uow, command.reservation_id)
        reservation.release(stock)
        await _save(uow, reservation, stock)
        await uow.commit()
    return reservation


@_retried
async def return_reservation(command: ReturnReservation, uow: UnitOfWork) -> Reservation:
    """The committed stock comes back on the shelf, once however often asked."""
    async with uow:
        reservation, stock = await _reservation_and_stock(uow, command.reservation_id)
        reservation.return_stock(stock)
        await _save(uow, reservation, stock)
        await uow.commit()
    return reservation


async def expire_reservations(command: ExpireReservations, uow: UnitOfWork, clock: Clock) -> int:
    """Release overdue reservations as expired, each in its own transaction; how many."""
    now = clock()
    async with uow:
        overdue = await uow.reservations.overdue(now, command.limit)
    expired = 0
    for reservation_id in overdue:
        try:
            async with uow:
                reservation, stock = await _reservation_and_stock(uow, reservation_id)
                if not reservation.is_overdue(now):
                    continue
                reservation.expire(now, stock)
                await _save(uow, reservation, stock)
                await uow.commit()
        except ConcurrentChange:
            continue  # committed, released or expired by another request meanwhile
        expired += 1
    return expired


@_retried
async def import_stock(command: ImportStock, uow: UnitOfWork) -> int:
    """Add a stock item for every SKU the inventory lacks, in one transaction; how many."""
    async with uow:
        stocked = await uow.stock.get_many([count.sku for count in command.counts])
        missing = [count for count in command.counts if count.sku not in stocked]
        for count in missing:
            await uow.stock.add(StockItem(sku=count.sku, on_hand=count.on_hand))
        await uow.commit()
    return len(missing)


async def _reservation_and_stock(
    uow: UnitOfWork, reservation_id: str
) -> tuple[Reservation, dict[str, StockItem]]:
    reservation = await uow.reservations.get(checked_reservation_id(reservation_id))
    if reservation is None:
        raise ReservationNotFound(reservation_id)
    stock = await uow.stock.get_many([line.sku for line in reservation.lines])
    return reservation, stock


async def _save(uow: UnitOfWork, reservation: Reservation, stock: dict[str, StockItem]) -> None:
    # The reservation first: its status is what concurrent commits and releases clash on.
    await uow.reservations.save(reservation)
    for item in stock.values():
        await uow.stock.save(item)
