"""A StockItem never has fewer units available than zero."""

from __future__ import annotations

import pytest

from inventory.domain.errors import InvalidStockItem, OutOfStock, StockStillReserved
from inventory.domain.model import MAX_UNITS, StockItem


def saffron(on_hand: int = 10, reserved: int = 0) -> StockItem:
    return StockItem(sku="SPC-SAFFRON-2G", on_hand=on_hand, reserved=reserved)


def test_available_is_on_hand_less_reserved() -> None:
    assert saffron(on_hand=10, reserved=4).available == 6


@pytest.mark.parametrize(("on_hand", "reserved"), [(-1, 0), (3, 4), (3, -1), (MAX_UNITS + 1, 0)])
def test_an_item_with_more_reserved_than_on_hand_or_negative_counts_cannot_exist(
    on_hand: int, reserved: int
) -> None:
    with pytest.raises(InvalidStockItem):
        saffron(on_hand=on_hand, reserved=reserved)


@pytest.mark.parametrize("sku", ["", "spc-1", "SPC 1", "SPC--1", "S" * 41])
def test_a_malformed_sku_is_refused(sku: str) -> None:
    with pytest.raises(InvalidStockItem) as caught:
        StockItem(sku=sku)

    assert caught.value.field == "sku"


def test_holding_units_moves_them_from_available_to_reserved() -> None:
    item = saffron(on_hand=10)

    item.hold(4)

    assert (item.on_hand, item.reserved, item.available) == (10, 4, 6)


def test_holding_more_than_is_available_is_refused_with_what_is_available() -> None:
    item = saffron(on_hand=10, reserved=8)

    with pytest.raises(OutOfStock) as caught:
        item.hold(3)

    assert (caught.value.sku, caught.value.requested, caught.value.available) == (
        "SPC-SAFFRON-2G",
        3,
        2,
    )
    assert item.reserved == 8


def test_unholding_puts_units_back_and_shipping_takes_them_off_the_shelf() -> None:
    item = saffron(on_hand=10, reserved=5)

    item.unhold(2)
    item.ship(3)

    assert (item.on_hand, item.reserved, item.available) == (7, 0, 7)


def test_a_stock_take_sets_the_units_on_hand() -> None:
    item = saffron(on_hand=10, reserved=2)

    item.count(4)

    assert (item.on_hand, item.available) == (4, 2)


def test_a_stock_take_below_what_is_reserved_is_refused() -> None:
    item = saffron(on_hand=10, reserved=5)

    with pytest.raises(StockStillReserved):
        item.count(4)

    assert item.on_hand == 10


def test_a_negative_stock_take_is_invalid() -> None:
    with pytest.raises(InvalidStockItem):
        saffron().count(-1)


def test_received_units_are_added_and_written_off_ones_taken_away() -> None:
    item = saffron(on_hand=10, reserved=3)

    item.add(5)
    item.add(-12)

    assert (item.on_hand, item.reserved) == (3, 3)


def test_writing_off_reserved_units_is_refused() -> None:
    item = saffron(on_hand=10, reserved=3)

    with pytest.raises(StockStillReserved):
        item.add(-8)

    assert item.on_hand == 10


def test_adding_past_the_largest_count_is_invalid() -> None:
    with pytest.raises(InvalidStockItem):
        saffron(on_hand=MAX_UNITS).add(1)
