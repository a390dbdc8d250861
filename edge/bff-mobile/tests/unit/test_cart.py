"""The cart's rules: one line per product, quantities within bounds, a limit on lines."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bff_mobile.domain.cart import MAX_LINES, MAX_QUANTITY, Cart
from bff_mobile.domain.errors import CartFull, InvalidQuantity
from bff_mobile.domain.model import ProductCard
from contracts import Money

from .conftest import AT
from .fakes import SAFFRON, TEA


def test_putting_a_product_in_adds_a_line_priced_as_the_catalog_said() -> None:
    cart = Cart("c-1")

    cart.put(SAFFRON, 2, at=AT)

    [line] = cart.lines
    assert (line.product_id, line.name, line.unit_price, line.quantity) == (
        SAFFRON.id,
        SAFFRON.name,
        Money(1490, "EUR"),
        2,
    )


def test_putting_a_product_in_again_sets_its_quantity_and_keeps_its_place() -> None:
    cart = Cart("c-1")
    cart.put(SAFFRON, 2, at=AT)
    cart.put(TEA, 1, at=AT + timedelta(minutes=1))

    cart.put(SAFFRON, 5, at=AT + timedelta(minutes=2))

    assert [(line.product_id, line.quantity) for line in cart.lines] == [
        (SAFFRON.id, 5),
        (TEA.id, 1),
    ]
    assert cart.lines[0].added_at == AT


def test_the_count_is_the_quantities_summed() -> None:
    cart = Cart("c-1")
    cart.put(SAFFRON, 2, at=AT)
    cart.put(TEA, 3, at=AT)

    assert cart.count == 5
    assert Cart("c-2").count == 0


@pytest.mark.parametrize("quantity", [0, -1, MAX_QUANTITY + 1])
def test_a_quantity_out_of_bounds_is_refused_and_changes_nothing(quantity: int) -> None:
    cart = Cart("c-1")
    cart.put(SAFFRON, 2, at=AT)

    with pytest.raises(InvalidQuantity):
        cart.put(SAFFRON, quantity, at=AT)
    assert cart.lines[0].quantity == 2


def test_a_full_cart_refuses_a_new_product_but_still_changes_the_ones_it_has() -> None:
    cart = Cart("c-1")
    for n in range(MAX_LINES):
        cart.put(ProductCard(f"p-{n}", f"Product {n}", "spices", Money(100, "EUR")), 1, at=AT)

    with pytest.raises(CartFull):
        cart.put(SAFFRON, 1, at=AT)
    cart.put(ProductCard("p-0", "Product 0", "spices", Money(100, "EUR")), 7, at=AT)

    assert len(cart.lines) == MAX_LINES
    assert cart.count == MAX_LINES - 1 + 7


def test_removing_says_whether_the_product_was_there() -> None:
    cart = Cart("c-1")
    cart.put(SAFFRON, 2, at=AT)

    assert cart.remove(SAFFRON.id) is True
    assert cart.remove(SAFFRON.id) is False
    assert cart.lines == []
