"""The cart keeps what a shopper means to buy, within what one order may hold."""

from __future__ import annotations

import pytest

from bff_web.domain.cart import MAX_LINES, MAX_QUANTITY, Cart, CartLine
from bff_web.domain.errors import CartLimitReached, InvalidQuantity, NotInCart


def test_adding_a_product_again_adds_to_its_line() -> None:
    cart = Cart()
    cart.add("saffron")
    cart.add("teapot", 2)
    cart.add("saffron", 3)
    assert cart.lines == [CartLine("saffron", 4), CartLine("teapot", 2)]
    assert cart.count == 6


def test_setting_a_quantity_to_zero_takes_the_line_out() -> None:
    cart = Cart()
    cart.add("saffron", 2)
    cart.set_quantity("saffron", 0)
    assert cart.is_empty
    cart.set_quantity("never-added", 0)
    assert cart.is_empty


def test_a_change_applies_to_the_carts_own_lines_only() -> None:
    cart = Cart()
    cart.add("saffron")
    cart.change("saffron", 3)
    with pytest.raises(NotInCart):
        cart.change("teapot", 2)
    assert cart.lines == [CartLine("saffron", 3)]


@pytest.mark.parametrize("quantity", [0, -1])
def test_adding_nothing_or_less_is_refused(quantity: int) -> None:
    with pytest.raises(InvalidQuantity):
        Cart().add("saffron", quantity)


def test_a_negative_quantity_is_refused() -> None:
    cart = Cart()
    cart.add("saffron")
    with pytest.raises(InvalidQuantity):
        cart.set_quantity("saffron", -2)
    assert cart.count == 1


def test_a_line_holds_at_most_what_an_order_line_may() -> None:
    cart = Cart()
    cart.add("saffron", MAX_QUANTITY)
    with pytest.raises(CartLimitReached):
        cart.add("saffron")
    assert cart.count == MAX_QUANTITY


def test_a_cart_holds_at_most_as_many_products_as_an_order_may() -> None:
    cart = Cart()
    for number in range(MAX_LINES):
        cart.add(f"product-{number}")
    with pytest.raises(CartLimitReached):
        cart.add("one-too-many")
    cart.add("product-0")  # more of a product already in it is fine
    assert len(cart.lines) == MAX_LINES
