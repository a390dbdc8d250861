"""The shop as the storefront's pages show it: read models of the catalog, stock and orders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

# An order in one of these has finished its checkout: its page stops watching it.
SETTLED_STATUSES: Final = frozenset({"CONFIRMED", "REJECTED", "CANCELLED"})
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
