"""Events of topic ``orders``, keyed by order id: an order's life as the orders service sees it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Final

from contracts.events.schema import Event, register, upcaster
from contracts.money import Money

TOPIC: Final = "orders"


@dataclass(frozen=True, slots=True)
class OrderItem:
    """A product and how many of it, as ordered."""

    product_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class PricedItem:
    """An order line as priced at the checkout."""

    product_id: str
    sku: str
    name: str
    quantity: int
    unit_price: Money


DELIVERY_OPTIONS: Final = ("standard", "express")
"""How an order travels: ``standard`` (3-5 working days) or ``express`` (next working day)."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where and how an order is delivered: the recipient, their address, the option."""

    name: str
    address: str
    postcode: str
    city: str
    country: str
    option: str


@dataclass(frozen=True, slots=True)
class OrderPlaced(Event):
    """A customer placed an order; its checkout starts.

    Version 4 adds ``delivery_price``, what the delivery costs as priced when the order was
    placed (included in the order's total; None without a delivery, and for every order of
    version 3, whose deliveries were all free); version 3 adds ``delivery`` (None for an
    order placed without one, as every order of versions 1 and 2 was); version 2 has items
    as objects; version 1 had ``[product_id, quantity]`` pairs.
    """

    event_type: ClassVar[str] = "OrderPlaced"
    schema_version: ClassVar[int] = 4
    topic: ClassVar[str] = TOPIC
    key_field: ClassVar[str] = "order_id"

    order_id: str
    customer_id: str
    items: tuple[OrderItem, ...]
    occurred_at: str
    delivery: Delivery | None = None
    delivery_price: Money | None = None

    @property
    def item_count(self) -> int:
        """Units ordered, all products together."""
        return sum(item.quantity for item in self.items)


@upcaster("OrderPlaced", from_version=1)
def _order_placed_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    items = [
        {"product_id": product_id, "quantity": quantity} for product_id, quantity in data["items"]
    ]
    return {**data, "items": items}


@upcaster("OrderPlaced", from_version=2)
def _order_placed_v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "delivery": None}


@upcaster("OrderPlaced", from_version=3)
def _order_placed_v3_to_v4(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "delivery_price": None}


@dataclass(frozen=True, slots=True)
class OrderConfirmed(Event):
    """Stock and payment are taken: the order will be shipped."""

    event_type: ClassVar[str] = "OrderConfirmed"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[str] = TOPIC
    key_field: ClassVar[str] = "order_id"

    order_id: str
    customer_id: str
    items: tuple[PricedItem, ...]
    total: Money
    occurred_at: str

    @property
    def item_count(self) -> int:
        """Units ordered, all products together."""
        return sum(item.quantity for item in self.items)


@dataclass(frozen=True, slots=True)
class OrderRejected(Event):
    """The checkout could not go through (out of stock, card declined, ...)."""

    event_type: ClassVar[str] = "OrderRejected"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[str] = TOPIC
    key_field: ClassVar[str] = "order_id"

    order_id: str
    customer_id: str
    reason: str
    occurred_at: str


@dataclass(frozen=True, slots=True)
class OrderCancelled(Event):
    """The customer cancelled; a confirmed order's payment is refunded afterwards.

    ``total`` is None if the order was cancelled before it was priced.
    """

    event_type: ClassVar[str] = "OrderCancelled"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[str] = TOPIC
    key_field: ClassVar[str] = "order_id"

    order_id: str
    customer_id: str
    was_confirmed: bool
    total: Money | None
    occurred_at: str


register(OrderPlaced, OrderConfirmed, OrderRejected, OrderCancelled)
