"""Command handlers and queries load, act and save through the unit of work."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from inventory.domain.commands import (
    AdjustStock,
    CommitReservation,
    ExpireReservations,
    ImportStock,
    ReleaseReservation,
    ReserveStock,
    StockCount,
)
from inventory.domain.errors import (
    ConcurrentChange,
    InvalidReservation,
    InvalidStockItem,
    OutOfStock,
    ReservationClosed,
    ReservationConflict,
    ReservationNotFound,
    StockStillReserved,
    UnknownSku,
)
from inventory.domain.model import ReservationLine, ReservationStatus
from inventory.service_layer.handlers import (
    MAX_ATTEMPTS,
    adjust_stock,
    commit_reservation,
    expire_reservations,
    import_stock,
    release_reservation,
    reserve_stock,
)
from inventory.service_layer.queries import get_reservation, stock_level, stock_levels

if TYPE_CHECKING:
    from services.inventory.tests.unit.fakes import FakeClock, FakeUnitOfWork

SAFFRON = "SPC-SAFFRON-2G"
RUG = "RUG-ZANAFI-90X140"


def reserve(
    reservation_id: str = "order-1", saffron: int = 2, rugs: int = 1, ttl_seconds: int = 60
) -> ReserveStock:
    lines = [ReservationLine(SAFFRON, saffron), ReservationLine(RUG, rugs)]
    return ReserveStock(
        reservation_id=reservation_id,
        lines=tuple(line for line in lines if line.quantity),
        ttl_seconds=ttl_seconds,
    )


def levels(uow: FakeUnitOfWork) -> dict[str, tuple[int, int]]:
    return {sku: (uow.stocked(sku).on_hand, uow.stocked(sku).reserved) for sku in (SAFFRON, RUG)}


async def test_a_reservation_holds_its_lines_until_its_expiry_time(
    uow: FakeUnitOfWork, clock: FakeClock
) -> None:
    reservation = await reserve_stock(reserve(ttl_seconds=90), uow, clock)

    assert reservation.expires_at == clock.now.replace(minute=1, second=30)
    assert levels(uow) == {SAFFRON: (10, 2), RUG: (3, 1)}
    stored = await get_reservation(uow, "order-1")
    assert (stored.status, stored.lines) == (ReservationStatus.RESERVED, reservation.lines)


async def test_reserving_again_with_the_same_lines_returns_the_reservation_without_holding_more(
    uow: FakeUnitOfWork, clock: FakeClock
) -> None:
    first = await reserve_stock(reserve(), uow, clock)
    clock.advance(seconds=5)

    again = await reserve_stock(reserve(ttl_seconds=600), uow, clock)

    assert (again.id, again.expires_at, again.lines) == (first.id, first.expires_at, first.lines)
    assert levels(uow) == {SAFFRON: (10, 2), RUG: (3, 1)}


async def test_reserving_an_id_again_with_other_lines_is_a_conflict(
    uow: FakeUnitOfWork, clock: FakeClock
) -> None:
    await reserve_stock(reserve(), uow, clock)

    with pytest.raises(ReservationConflict):
        await reserve_stock(reserve(saffron=3), uow, clock)

    assert levels(uow) == {SAFFRON: (10, 2), RUG: (3, 1)}


async def test_a_reservation_one_line_cannot_fill_holds_nothing(
    uow: FakeUnitOfWork, clock: FakeClock
) -> None:
    with pytest.raises(OutOfStock) as caught:
        await reserve_stock(reserve(rugs=4), uow, clock)

    assert (caught.value.sku, caught.value.available) == (RUG, 3)
    assert levels(uow) == {SAFFRON: (10, 0), RUG: (3, 0)}
    with pytest.raises(ReservationNotFound):
        await get_reservation(uow, "order-1")


async def test_two_reservations_cannot_hold_more_than_is_on_hand(
    uow: FakeUnitOfWork, clock: FakeClock
) -> None:
    await reserve_stock(reserve("order-1", saffron=0, rugs=2), uow, clock)

    with pytest.raises(OutOfStock):
        await reserve_stock(reserve("order-2", saffron=0, rugs=2), uow, clock)


@pytest.mark.parametrize(
    "command",
    [
        ReserveStock(reservation_id="", lines=(ReservationLine(SAFFRON, 1),)),
        ReserveStock(reservation_id="order-1", lines=()),
        ReserveStock(reservation_id="order-1", lines=(ReservationLine(SAFFRON, 0),)),
        ReserveStock(reservation_id="order-1", lines=(ReservationLine(SAFFRON, 1),), ttl_seconds=0),
    ],
)
async def test_an_invalid_reservation_is_refused_before_anything_is_held(
    uow: FakeUnitOfWork, clock: FakeClock, command: ReserveStock
) -> None:
    with pytest.raises(InvalidReservation):
        await reserve_stock(command, uow, clock)

    assert levels(uow) == {SAFFRON: (10, 0), RUG: (3, 0)}


async def test_a_line_for_a_sku_the_inventory_lacks_is_refused(
    uow: FakeUnitOfWork, clock: FakeClock
) -> None:
    command = ReserveStock(reservation_id="order-1", lines=(ReservationLine("TEA-NONE", 1),))

    with pytest.raises(UnknownSku):
        await reserve_stock(command, uow, clock)


async def test_committing_ships_the_units_and_committing_again_changes_nothing(
    uow: FakeUnitOfWork, clock: FakeClock
) -> None:
    await reserve_stock(reserve(), uow, clock)

    first = await commit_reservation(CommitReservation("order-1"), uow, clock)
    again = await commit_reservation(CommitReservation("order-1"), uow, clock)

    assert first.status is again.status is ReservationStatus.COMMITTED
    assert levels(uow) == {SAFFRON: (8, 0), RUG: (2, 0)}


async def test_releasing_returns_the_units_and_releasing_again_changes_nothing(
    uow: FakeUnitOfWork, clock: FakeClock
) -> None:
    await reserve_stock(reserve(), uow, clock)

    first = await release_reservation(ReleaseReservation("order-1"), uow)
    again = await release_reservation(ReleaseReservation("order-1"), uow)

    assert first.status is again.status is ReservationStatus.RELEASED
    assert levels(uow) == {SAFFRON: (10, 0), RUG: (3, 0)}


async def test_a_released_reservation_cannot_be_committed_nor_a_committed_one_released(
    uow: FakeUnitOfWork, clock: FakeClock
) -> None:
    await reserve_stock(reserve("released"), uow, clock)
    await reserve_stock(reserve("committed", saffron=1, rugs=0), uow, clock)
    await release_reservation(ReleaseReservation("released"), uow)
    await commit_reservation(CommitReservation("committed"), uow, clock)

    with pytest.raises(ReservationClosed):
        await commit_reservation(CommitReservation("released"), uow, clock)
    with pytest.raises(ReservationClosed):
        await release_reservation(ReleaseReservation("committed"), uow)

    assert levels(uow) == {SAFFRON: (9, 0), RUG: (3, 0)}


@pytest.mark.parametrize("reservation_id", ["nobody", ""])
async def test_committing_or_releasing_a_reservation_that_does_not_exist_is_refused(
    uow: FakeUnitOfWork, clock: FakeClock, reservation_id: str
) -> None:
    expected = ReservationNotFound if reservation_id else InvalidReservation
    with pytest.raises(expected):
        await commit_reservation(CommitReservation(reservation_id), uow, clock)
    with pytest.raises(expected):
        await release_reservation(ReleaseReservation(reservation_id), uow)


async def test_expiry_releases_only_the_reservations_past_their_time(
    uow: FakeUnitOfWork, clock: FakeClock
) -> None:
    await reserve_stock(reserve("short", saffron=1, rugs=0, ttl_seconds=60), uow, clock)
    await reserve_stock(reserve("long", saffron=2, rugs=0, ttl_seconds=600), uow, clock)
    await reserve_stock(reserve("paid", saffron=0, rugs=1, ttl_seconds=60), uow, clock)
    await commit_reservation(CommitReservation("paid"), uow, clock)

    clock.advance(seconds=59)
    assert await expire_reservations(ExpireReservations(), uow, clock) == 0
    clock.advance(seconds=1)
    assert await expire_reservations(ExpireReservations(), uow, clock) == 1

    statuses = [(await get_reservation(uow, id_)).status for id_ in ("short", "long", "paid")]
    assert statuses == ["expired", "reserved", "committed"]
    assert levels(uow) == {SAFFRON: (10, 2), RUG: (2, 0)}


async def test_an_expiry_sweep_expires_at_most_its_limit_oldest_first(
    uow: FakeUnitOfWork, clock: FakeClock
) -> None:
    for n, ttl in enumerate((30, 10, 20)):
        await reserve_stock(reserve(f"order-{n}", saffron=1, rugs=0, ttl_seconds=ttl), uow, clock)
    clock.advance(minutes=1)

    assert await expire_reservations(ExpireReservations(limit=2), uow, clock) == 2

    statuses = [(await get_reservation(uow, f"order-{n}")).status for n in range(3)]
    assert statuses == ["reserved", "expired", "expired"]


async def test_an_expired_reservation_cannot_be_committed_but_releasing_it_is_harmless(
    uow: FakeUnitOfWork, clock: FakeClock
) -> None:
    await reserve_stock(reserve(ttl_seconds=60), uow, clock)
    clock.advance(minutes=2)
    await expire_reservations(ExpireReservations(), uow, clock)

    with pytest.raises(ReservationClosed):
        await commit_reservation(CommitReservation("order-1"), uow, clock)
    released = await release_reservation(ReleaseReservation("order-1"), uow)

    assert released.status is ReservationStatus.EXPIRED
    assert levels(uow) == {SAFFRON: (10, 0), RUG: (3, 0)}


async def test_a_save_refused_by_a_concurrent_change_is_tried_again_from_fresh_data(
    uow: FakeUnitOfWork, clock: FakeClock
) -> None:
    uow.interference.saves = MAX_ATTEMPTS - 1

    await reserve_stock(reserve(), uow, clock)

    assert levels(uow) == {SAFFRON: (10, 2), RUG: (3, 1)}


async def test_after_too_many_concurrent_changes_the_caller_is_told_to_try_again(
    uow: FakeUnitOfWork, clock: FakeClock
) -> None:
    uow.interference.saves = MAX_ATTEMPTS

    with pytest.raises(ConcurrentChange):
        await reserve_stock(reserve(), uow, clock)

    assert levels(uow) == {SAFFRON: (10, 0), RUG: (3, 0)}


async def test_an_expiry_sweep_skips_a_reservation_changed_meanwhile(
    uow: FakeUnitOfWork, clock: FakeClock
) -> None:
    await reserve_stock(reserve("order-1", ttl_seconds=60), uow, clock)
    await reserve_stock(reserve("order-2", saffron=1, rugs=0, ttl_seconds=90), uow, clock)
    clock.advance(minutes=2)
    uow.interference.saves = 1

    assert await expire_reservations(ExpireReservations(), uow, clock) == 1
    assert (await get_reservation(uow, "order-1")).status is ReservationStatus.RESERVED


async def test_a_stock_take_sets_on_hand_and_a_delivery_adds_to_it(uow: FakeUnitOfWork) -> None:
    await adjust_stock(AdjustStock(SAFFRON, set_on_hand=4), uow)
    item = await adjust_stock(AdjustStock(SAFFRON, add=6), uow)

    assert (item.on_hand, item.available) == (10, 10)
    assert (await stock_level(uow, SAFFRON)).on_hand == 10


async def test_adjusting_a_sku_the_inventory_lacks_starts_it_at_zero(uow: FakeUnitOfWork) -> None:
    item = await adjust_stock(AdjustStock("TEA-VERBENA-80G", add=12), uow)

    assert (item.sku, item.on_hand, item.reserved) == ("TEA-VERBENA-80G", 12, 0)


async def test_an_adjustment_below_what_is_reserved_is_refused(
    uow: FakeUnitOfWork, clock: FakeClock
) -> None:
    await reserve_stock(reserve(rugs=3), uow, clock)

    with pytest.raises(StockStillReserved):
        await adjust_stock(AdjustStock(RUG, add=-1), uow)


@pytest.mark.parametrize(
    "command",
    [
        AdjustStock(SAFFRON),
        AdjustStock(SAFFRON, set_on_hand=1, add=1),
        AdjustStock("saffron", add=1),
        AdjustStock(SAFFRON, set_on_hand=-1),
    ],
)
async def test_an_adjustment_needs_a_valid_sku_and_exactly_one_change(
    uow: FakeUnitOfWork, command: AdjustStock
) -> None:
    with pytest.raises(InvalidStockItem):
        await adjust_stock(command, uow)


async def test_an_import_adds_only_the_skus_the_inventory_lacks(uow: FakeUnitOfWork) -> None:
    command = ImportStock(counts=(StockCount(SAFFRON, 99), StockCount("TEA-VERBENA-80G", 25)))

    first = await import_stock(command, uow)
    second = await import_stock(command, uow)

    assert (first, second) == (1, 0)
    assert [(i.sku, i.on_hand) for i in await stock_levels(uow, [SAFFRON, "TEA-VERBENA-80G"])] == [
        (SAFFRON, 10),
        ("TEA-VERBENA-80G", 25),
    ]


async def test_stock_levels_leave_out_unknown_skus_and_refuse_malformed_ones(
    uow: FakeUnitOfWork,
) -> None:
    assert [i.sku for i in await stock_levels(uow, [SAFFRON, "TEA-NONE", RUG])] == [RUG, SAFFRON]
    with pytest.raises(UnknownSku):
        await stock_level(uow, "TEA-NONE")
    with pytest.raises(InvalidStockItem):
        await stock_level(uow, "tea none")
    with pytest.raises(InvalidStockItem):
        await stock_levels(uow, [f"TEA-{n}" for n in range(101)])
