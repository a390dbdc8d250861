"""The cart: what a shopper means to buy, kept in their session until checkout."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from bff_web.domain.errors import CartLimitReached, InvalidQuantity, NotInCart

# The limits of one order at orders: a cart that fits them can always be placed.
MAX_QUANTITY: Final = 100
MAX_LINES: Final = 50


@dataclass(frozen=True, slots=True)
class CartLine:
    product_id: str
    quantity: int


@dataclass(slots=True)
class Cart:
    """Products and quantities, in the order they were first added."""

    quantities: dict[str, int] = field(default_factory=dict)

    def add(self, product_id: str, quantity: int = 1) -> None:
        """Put ``quantity`` more of a product in the cart."""
        if quantity < 1:
            raise InvalidQuantity(f"add at least one, not {quantity}")
        self.set_quantity(product_id, self.quantities.get(product_id, 0) + quantity)

    def change(self, product_id: str, quantity: int) -> None:
        """Make a line the cart has hold ``quantity``; only ``add`` puts a product in."""
        if product_id not in self.quantities:
            raise NotInCart(NotInCart.MESSAGE)
        self.set_quantity(product_id, quantity)

    def set_quantity(self, product_id: str, quantity: int) -> None:
        """Make the line of a product hold ``quantity``; zero takes it out of the cart."""
        if quantity < 0:
            raise InvalidQuantity(f"a quantity cannot be negative ({quantity})")
        if quantity > MAX_QUANTITY:
            raise CartLimitReached(f"at most {MAX_QUANTITY} of one product per order")
        if quantity == 0:
            self.quantities.pop(product_id, None)
            return
        if product_id not in self.quantities and len(self.quantities) >= MAX_LINES:
            raise CartLimitReached(f"at most {MAX_LINES} different products per order")
        self.quantities[product_id] = quantity

    def clear(self) -> None:
        self.quantities.clear()

    @property
    def lines(self) -> list[CartLine]:
        return [CartLine(product_id, quantity) for product_id, quantity in self.quantities.items()]

    @property
    def count(self) -> int:
        """How many items the cart holds, as the header's badge shows it."""
        return sum(self.quantities.values())

    @property
    def is_empty(self) -> bool:
        return not self.quantities
