"""The shop as the storefront's pages show it: read models of the catalog, stock and orders."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Mapping

    from bff_web.domain.delivery import Delivery

# An order in one of these has finished its checkout: its page stops watching it.
SETTLED_STATUSES: Final = frozenset({"CONFIRMED", "REJECTED", "CANCELLED"})
# An order in one of these was not placed: the shopper's cart comes back.
REJECTED_STATUSES: Final = frozenset({"REJECTED", "CANCELLED"})
_SYMBOLS: Final = {"EUR": "€", "USD": "$", "GBP": "£"}


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in integer minor units and its currency (two decimals: EUR, USD, GBP)."""

    amount: int
    currency: str

    def __str__(self) -> str:
        units, cents = divmod(abs(self.amount), 100)
        sign = "-" if self.amount < 0 else ""
        symbol = _SYMBOLS.get(self.currency)
        number = f"{units:,}.{cents:02d}"
        return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {self.currency}"

    def times(self, quantity: int) -> Money:
        return Money(self.amount * quantity, self.currency)


@dataclass(frozen=True, slots=True)
class Category:
    slug: str
    name: str
    product_count: int


@dataclass(frozen=True, slots=True)
class Product:
    id: str
    sku: str
    name: str
    description: str
    category: str
    price: Money


@dataclass(frozen=True, slots=True)
class ProductPage:
    """One page of a product listing; ``page`` counts from 1."""

    items: list[Product]
    page: int
    pages: int
    total: int


@dataclass(frozen=True, slots=True)
class StockLevel:
    sku: str
    available: int

    @property
    def in_stock(self) -> bool:
        return self.available > 0


@dataclass(frozen=True, slots=True)
class OrderLine:
    product_id: str
    name: str | None
    quantity: int
    line_total: Money | None


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    status: str
    lines: list[OrderLine]
    total: Money | None
    reason: str | None
    created_at: datetime
    delivery: Delivery | None = None
    payment_id: str | None = None

    @property
    def settled(self) -> bool:
        """Whether the checkout is over: confirmed, rejected or cancelled."""
        return self.status in SETTLED_STATUSES


@dataclass(frozen=True, slots=True)
class OrderPage:
    items: list[Order]
    page: int
    pages: int
    total: int


# Orders' reasons, as its saga words them: "payment declined: card_declined",
# "out of stock: SKU (2 available), SKU (0 available)", "<step> got no answer in 5 s".
_SHORTAGE: Final = re.compile(r"([A-Z0-9][A-Z0-9-]*) \((\d+) available\)")
_DECLINES: Final = {
    "card_declined": "Your card was declined",
    "insufficient_funds": "Your card was declined for insufficient funds",
    "expired_card": "Your card has expired",
}
NOTHING_CHARGED: Final = "Nothing was charged."


def explain_rejection(reason: str | None, names_by_sku: Mapping[str, str]) -> str:
    """Why an order was not placed, in words for the shopper: products by name, no codes."""
    reason = (reason or "").strip()
    if reason.startswith("payment declined"):
        code = reason.partition(":")[2].strip()
        said = _DECLINES.get(code, "Your payment was not accepted")
        return f"{said}. {NOTHING_CHARGED} Try again, or pay with another card."
    if reason.startswith("out of stock"):
        short = [
            _shortage(names_by_sku.get(sku, "One of the products"), int(available))
            for sku, available in _SHORTAGE.findall(reason)
        ]
        said = " ".join(short) or "Some of the products sold out before we could reserve them."
        return f"{said} {NOTHING_CHARGED} Change the quantities in your cart and try again."
    if "no answer" in reason:
        return (
            "Part of the shop did not answer in time, so we could not complete the order. "
            f"{NOTHING_CHARGED} Please try again in a moment."
        )
    return f"We could not complete this order. {NOTHING_CHARGED} Please try again."


def _shortage(name: str, available: int) -> str:
    if available == 0:
        return f"{name} has sold out."
    return f"{name}: only {available} left, fewer than you asked for."
