from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts import Money, MoneyError

amounts = st.integers(min_value=-(10**12), max_value=10**12)


def test_money_is_integer_minor_units_of_a_currency():
    price = Money(1299, "EUR")
    assert price.to_dict() == {"amount": 1299, "currency": "EUR"}
    assert price.format() == "12.99 EUR"


@pytest.mark.parametrize("amount", [12.99, "1299", True, None])
def test_an_amount_that_is_not_a_whole_number_of_minor_units_is_refused(amount):
    with pytest.raises(MoneyError, match="minor units"):
        Money(amount, "EUR")


@pytest.mark.parametrize("currency", ["eur", "EURO", "XXX", ""])
def test_an_unknown_or_malformed_currency_is_refused(currency):
    with pytest.raises(MoneyError, match="unsupported currency"):
        Money(100, currency)


def test_amounts_of_different_currencies_never_combine():
    with pytest.raises(MoneyError, match="cannot combine EUR with USD"):
        Money(100, "EUR") + Money(100, "USD")


def test_a_line_total_is_price_times_a_whole_quantity():
    assert Money(450, "EUR") * 3 == Money(1350, "EUR")
    assert 3 * Money(450, "EUR") == Money(1350, "EUR")
    with pytest.raises(MoneyError, match="whole quantity"):
        Money(450, "EUR") * 1.5


def test_currencies_without_minor_units_format_without_a_decimal_point():
    assert Money(1500, "JPY").format() == "1500 JPY"
    assert Money(-5, "EUR").format() == "-0.05 EUR"


@given(amounts, amounts)
def test_addition_and_subtraction_are_exact(a, b):
    total = Money(a, "EUR") + Money(b, "EUR")
    assert total.amount == a + b
    assert (total - Money(b, "EUR")) == Money(a, "EUR")


@given(amounts, amounts)
def test_ordering_follows_the_amount(a, b):
    assert (Money(a, "EUR") < Money(b, "EUR")) == (a < b)
    assert (Money(a, "EUR") <= Money(b, "EUR")) == (a <= b)
