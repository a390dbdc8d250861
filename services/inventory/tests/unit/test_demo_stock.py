"""The demo stock Souk ships covers the demo catalog, with a few items scarce and one sold out."""

from __future__ import annotations

from inventory.adapters.demo_stock import load_demo_stock
from inventory.domain.model import StockItem


def test_the_demo_stock_has_one_valid_count_per_sku() -> None:
    counts = load_demo_stock().counts

    items = [StockItem(sku=count.sku, on_hand=count.on_hand) for count in counts]
    assert len(items) >= 60
    assert len({item.sku for item in items}) == len(items)


def test_most_demo_items_are_plentiful_a_few_scarce_and_one_sold_out() -> None:
    on_hand = [count.on_hand for count in load_demo_stock().counts]

    assert on_hand.count(25) > len(on_hand) * 0.9
    assert sorted(n for n in on_hand if n < 25) == [0, 2, 2, 3, 3]
