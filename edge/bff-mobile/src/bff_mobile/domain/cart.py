"""The cart: what a customer means to buy, kept until they check out.

It lives in bff-mobile's own database, keyed by the access token's subject. No service of
the shop owns carts: an order is a commitment that orders prices, reserves and charges,
while a cart commits nothing and is the app's state between screens, so it stays with the
backend of the app that shows it. Keyed by the customer rather than by a device, it follows
them from phone to phone and survives a reinstall.

Prices are the catalog's when each product was put in: enough for the cart screen, while
orders prices the order again from the catalog at checkout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from bff_mobile.domain.errors import CartFull, InvalidQuantity

if TYPE_CHECKING:
    from datetime import datetime

    from bff_mobile.domain.model import ProductCard
    from contracts import Money

MAX_QUANTITY: Final = 100
"""Per product, as orders accepts per line."""
MAX_LINES: Final = 50


@dataclass(frozen=True, slots=True)
class CartLine:
    product_id: str
    name: str
    unit_price: Money
    quantity: int
    added_at: datetime


@dataclass
class Cart:
    """One customer's cart: at most one line per product, each of 1 to MAX_QUANTITY."""

    customer_id: str
    lines: list[CartLine] = field(default_factory=list)

    @property
    def count(self) -> int:
        """How many items, as the app's cart badge shows: the quantities summed."""
        return sum(line.quantity for line in self.lines)

    def put(self, product: ProductCard, quantity: int, *, at: datetime) -> CartLine:
        """Set the quantity of ``product``; raises InvalidQuantity or CartFull."""
        if not 1 <= quantity <= MAX_QUANTITY:
            raise InvalidQuantity(quantity, MAX_QUANTITY)
        current = self.line(product.id)
        if current is None and len(self.lines) >= MAX_LINES:
            raise CartFull(MAX_LINES)
        line = CartLine(
            product_id=product.id,
            name=product.name,
            unit_price=product.price,
            quantity=quantity,
            added_at=at if current is None else current.added_at,
        )
        self.lines = [line if existing is current else existing for existing in self.lines]
        if current is None:
            self.lines.append(line)
        return line

    def remove(self, product_id: str) -> bool:
        """Take the product out; False if it was not in the cart."""
        kept = [line for line in self.lines if line.product_id != product_id]
        removed = len(kept) != len(self.lines)
        self.lines = kept
        return removed

    def line(self, product_id: str) -> CartLine | None:
        return next((line for line in self.lines if line.product_id == product_id), None)
