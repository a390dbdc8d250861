"""Facts about orders, recorded on the aggregate for publishing later."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from contracts import Money


@dataclass(frozen=True, slots=True)
class OrderPlaced:
    order_id: str
    customer_id: str
    items: tuple[tuple[str, int], ...]
    """(product id, quantity) pairs."""


@dataclass(frozen=True, slots=True)
class OrderConfirmed:
    order_id: str
    customer_id: str
    total: Money


@dataclass(frozen=True, slots=True)
class OrderRejected:
    order_id: str
    customer_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class OrderCancelled:
    order_id: str
    customer_id: str
    was_confirmed: bool


Event = OrderPlaced | OrderConfirmed | OrderRejected | OrderCancelled
