"""What happens to an order, as the events its stream holds: the Order is folded from them.

Four of them are also what the ``orders`` topic publishes (placed, confirmed, rejected,
cancelled); the others (priced, a step begun, a step's outcome) only record the saga's
progress. An order stored before the orders were event sourced starts with OrderImported,
which carries its whole state as it was then.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    from contracts import Money
    from orders.domain.saga import Outcome, Step


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
class StepRecord:
    """One entry of an order's checkout log."""

    step: Step
    outcome: Outcome
    at: datetime
    detail: str = ""


@dataclass(frozen=True, slots=True)
class OrderPlaced:
    order_id: str
    customer_id: str
    items: tuple[tuple[str, int], ...]
    """(product id, quantity) pairs."""
    at: datetime


@dataclass(frozen=True, slots=True)
class OrderPriced:
    """The catalog's prices, names and SKUs, one priced line per line of the order."""

    order_id: str
    lines: tuple[OrderLine, ...]
    at: datetime


@dataclass(frozen=True, slots=True)
class StepBegun:
    """The saga's command for ``step`` went out; a forward step has until ``deadline``."""

    order_id: str
    step: Step
    deadline: datetime | None
    at: datetime


@dataclass(frozen=True, slots=True)
class StepRecorded:
    """A step's outcome; ``payment_id`` is what an authorization that succeeded made."""

    order_id: str
    record: StepRecord
    payment_id: str | None = None


@dataclass(frozen=True, slots=True)
class OrderConfirmed:
    order_id: str
    customer_id: str
    lines: tuple[OrderLine, ...]
    total: Money
    at: datetime


@dataclass(frozen=True, slots=True)
class OrderRejected:
    order_id: str
    customer_id: str
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class OrderCancelled:
    order_id: str
    customer_id: str
    was_confirmed: bool
    total: Money | None
    at: datetime


@dataclass(frozen=True, slots=True)
class OrderImported:
    """An order as it stood in the tables before event sourcing: its whole state at once."""

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
PUBLISHED = (OrderPlaced, OrderConfirmed, OrderRejected, OrderCancelled)
"""The events the ``orders`` topic carries."""
