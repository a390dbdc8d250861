"""What the mobile screens are made of: other services' things, cut to what a phone shows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    from contracts import Money


@dataclass(frozen=True, slots=True)
class ProductCard:
    """A product as a tile shows it; the price is the catalog's at the time it was read."""

    id: str
    name: str
    category: str
    price: Money


@dataclass(frozen=True, slots=True)
class Category:
    slug: str
    name: str
    product_count: int


@dataclass(frozen=True, slots=True)
class OrderSummary:
    """One of the customer's orders as a list row shows it; no total until it is priced."""

    id: str
    status: str
    total: Money | None
    item_count: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OrdersPage:
    """Some of a customer's orders, newest first, and where orders goes on after them."""

    items: list[OrderSummary]
    next_before: str | None
    """Orders' own cursor for the rest; None when these are the last."""
