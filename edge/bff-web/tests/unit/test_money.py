"""Prices as the pages show them."""

from __future__ import annotations

import pytest

from bff_web.domain.shop import Money, Order

from .conftest import NOW


@pytest.mark.parametrize(
    ("money", "shown"),
    [
        (Money(1490, "EUR"), "€14.90"),
        (Money(5, "EUR"), "€0.05"),
        (Money(1234567, "GBP"), "£12,345.67"),
        (Money(-250, "USD"), "-$2.50"),
        (Money(990, "MAD"), "9.90 MAD"),
    ],
)
def test_money_is_shown_with_its_symbol_and_two_decimals(money: Money, shown: str) -> None:
    assert str(money) == shown


def test_a_line_total_is_the_price_times_the_quantity() -> None:
    assert Money(1490, "EUR").times(3) == Money(4470, "EUR")


@pytest.mark.parametrize(
    ("status", "settled"),
    [("PENDING", False), ("CONFIRMED", True), ("REJECTED", True), ("CANCELLED", True)],
)
def test_an_order_is_settled_once_its_checkout_is_over(status: str, settled: bool) -> None:
    order = Order("o-1", status, [], None, None, NOW)
    assert order.settled is settled
