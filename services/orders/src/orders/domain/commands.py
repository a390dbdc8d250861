"""What callers ask of orders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from contracts import Money
from contracts.events.orders import Delivery
from contracts.events.schema import Event as Schema
from orders.domain.saga_definition import Step


@dataclass(frozen=True, slots=True)
class RequestedItem:
    product_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    """Place an order once per ``idempotency_key``.

    ``request_fingerprint`` digests the request, so a replay (same key, same request) can be
    told apart from a reused key (same key, another request).
    """

    customer_id: str
    items: tuple[RequestedItem, ...]
    card_token: str
    idempotency_key: str
    request_fingerprint: str
    delivery: Delivery | None = None
    delivery_price: Money | None = None
    """Orders' price of the delivery's option (its settings), not the caller's."""


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """Cancel an order of ``customer_id``'s; another customer's order is not found."""

    order_id: str
    customer_id: str


@dataclass(frozen=True, slots=True)
class RunStep(Schema):
    """The saga's command to run ``step`` of an order: the order records it as it notes the
    step begun, and it is sent in the same transaction, so no step is begun and forgotten.

    A ``contracts`` schema of orders' own, on its own topic, keyed by the order: the commands
    of one order come one at a time, in order.
    """

    event_type: ClassVar[str] = "RunCheckoutStep"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[str] = "checkout"
    key_field: ClassVar[str] = "order_id"

    order_id: str
    step: Step
