"""What happens to an order, as the events its stream holds: the Order is folded from them.

Four of them are the very events the ``orders`` topic publishes (``contracts.events.orders``:
placed, confirmed, rejected, cancelled). The others record the saga's progress and are
orders' own (priced, a step begun, a step's outcome); an order stored before the orders were
event sourced starts with OrderImported, which carries its whole state as it was then. All
are ``contracts`` event schemas, so one serializer, with its upcasters, writes and reads
every one of them, in the stream as on the bus.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Final

from contracts import Money
from contracts.events.orders import (
    Delivery,
    OrderCancelled,
    OrderConfirmed,
    OrderItem,
    OrderPlaced,
    OrderRejected,
    PricedItem,
)
from contracts.events.schema import Event as Schema
from orders.domain.saga_definition import Outcome, Step
from orders.domain.step_log import StepRecord

__all__ = [
    "PRIVATE",
    "PUBLISHED",
    "Delivery",
    "Event",
    "OrderCancelled",
    "OrderConfirmed",
    "OrderImported",
    "OrderItem",
    "OrderLine",
    "OrderPlaced",
    "OrderPriced",
    "OrderRejected",
    "PricedItem",
    "StepBegun",
    "StepRecord",
    "StepRecorded",
]


@dataclass(frozen=True, slots=True)
class OrderLine:
    """A product and a quantity; sku, name and unit price are filled in when priced."""

    product_id: str
    quantity: int
    sku: str | None = None
    name: str | None = None
    unit_price: Money | None = None

    @property
    def line_total(self) -> Money | None:
        return None if self.unit_price is None else self.unit_price * self.quantity


@dataclass(frozen=True, slots=True)
class OrderPriced(Schema):
    """The catalog's prices, names and SKUs, one priced line per line of the order."""

    event_type: ClassVar[str] = "OrderPriced"
    schema_version: ClassVar[int] = 1

    order_id: str
    lines: tuple[OrderLine, ...]
    at: datetime


@dataclass(frozen=True, slots=True)
class StepBegun(Schema):
    """The saga's command for ``step`` went out; a forward step has until ``deadline``."""

    event_type: ClassVar[str] = "CheckoutStepBegun"
    schema_version: ClassVar[int] = 1

    order_id: str
    step: Step
    deadline: datetime | None
    at: datetime


@dataclass(frozen=True, slots=True)
class StepRecorded(Schema):
    """A step's outcome; ``payment_id`` is what an authorization that succeeded made."""

    event_type: ClassVar[str] = "CheckoutStepRecorded"
    schema_version: ClassVar[int] = 1

    order_id: str
    step: Step
    outcome: Outcome
    detail: str
    at: datetime
    payment_id: str | None = None

    @property
    def record(self) -> StepRecord:
        return StepRecord(self.step, self.outcome, self.at, self.detail)


@dataclass(frozen=True, slots=True)
class OrderImported(Schema):
    """An order as it stood in the tables before event sourcing: its whole state at once."""

    event_type: ClassVar[str] = "OrderImported"
    schema_version: ClassVar[int] = 1

    order_id: str
    customer_id: str
    lines: tuple[OrderLine, ...]
    status: str
    reason: str | None
    last_error: str | None
    payment_id: str | None
    step_in_progress: Step | None
    step_deadline: datetime | None
    steps: tuple[StepRecord, ...]
    created_at: datetime
    updated_at: datetime


Event = (
    OrderPlaced
    | OrderPriced
    | StepBegun
    | StepRecorded
    | OrderConfirmed
    | OrderRejected
    | OrderCancelled
    | OrderImported
)
PUBLISHED: Final = (OrderPlaced, OrderConfirmed, OrderRejected, OrderCancelled)
"""The events the ``orders`` topic carries."""
PRIVATE: Final = (OrderPriced, StepBegun, StepRecorded, OrderImported)
"""The events only the Order's stream holds."""
