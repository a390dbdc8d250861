"""An order as its customer looks back on it, and the products it names, folded from events.

Events come from four services on four topics. The bus keeps the order of one key within a
topic, but not across topics (a payment may arrive before its order is placed), and delivers
at least once (a message may come twice, or come back late from the dead letters). So every
``apply`` here is a merge that neither the order nor the repetition of events can change:
each part of the view moves only forwards, along the stages of its own stream (an order is
confirmed after it was pending, a payment captured after it was authorized, a product's
version only grows), and a tie is settled by a fixed rule. Fold the same events in any
order, any number of times: the view is the same. That is what lets a replay from the
archive give exactly the view the live projection built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final, TypeVar

from contracts.events import (
    Delivery,
    Event,
    OrderCancelled,
    OrderConfirmed,
    OrderItem,
    OrderPlaced,
    OrderRejected,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentDeclined,
    PaymentRefunded,
    PaymentVoided,
    PricedItem,
    ProductCreated,
    ProductUpdated,
    ReservationCommitted,
    ReservationExpired,
    ReservationReleased,
    ReservationReturned,
    StockLine,
    StockReserved,
)
from contracts.money import Money

PaymentEvent = (
    PaymentAuthorized | PaymentDeclined | PaymentCaptured | PaymentVoided | PaymentRefunded
)

CUSTOMER_ID_MAX_LENGTH: Final = 100
ORDER_ID_MAX_LENGTH: Final = 100


class OrderStatus(StrEnum):
    """Where the order stands, in the orders service's words."""

    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"


class PaymentState(StrEnum):
    """What became of the order's payment, as billing told."""

    AUTHORIZED = "AUTHORIZED"
    DECLINED = "DECLINED"
    CAPTURED = "CAPTURED"
    VOIDED = "VOIDED"
    REFUNDED = "REFUNDED"


class StockState(StrEnum):
    """What became of the stock reserved for the order, as inventory told."""

    RESERVED = "RESERVED"
    COMMITTED = "COMMITTED"
    RELEASED = "RELEASED"
    EXPIRED = "EXPIRED"
    RETURNED = "RETURNED"


# The stage of each state along its stream: a later stage replaces an earlier one, never the
# reverse. States of one stage exclude each other (confirmed or rejected); should both ever
# be told, the greater name wins, whichever came first.
_ORDER_STAGE: Final = {
    OrderStatus.PENDING: 1,
    OrderStatus.CONFIRMED: 2,
    OrderStatus.REJECTED: 2,
    OrderStatus.CANCELLED: 3,
}
_PAYMENT_STAGE: Final = {
    PaymentState.AUTHORIZED: 1,
    PaymentState.DECLINED: 2,
    PaymentState.CAPTURED: 2,
    PaymentState.VOIDED: 3,
    PaymentState.REFUNDED: 3,
}
_STOCK_STAGE: Final = {
    StockState.RESERVED: 1,
    StockState.COMMITTED: 2,
    StockState.RELEASED: 2,
    StockState.EXPIRED: 2,
    StockState.RETURNED: 3,
}


@dataclass(frozen=True, slots=True)
class Payment:
    """The order's payment: its state, the amount, and why it was declined (if it was)."""

    state: PaymentState
    amount: Money
    reason: str | None = None

    def after(self, other: Payment | None) -> bool:
        """Whether this payment state comes later than ``other`` (None: nothing known yet)."""
        if other is None:
            return True
        return _later(_PAYMENT_STAGE, self.state, other.state)


@dataclass(frozen=True, slots=True)
class Stock:
    """The stock reserved for the order and what became of it."""

    state: StockState
    lines: tuple[StockLine, ...]

    def after(self, other: Stock | None) -> bool:
        """Whether this stock state comes later than ``other`` (None: nothing known yet)."""
        if other is None:
            return True
        return _later(_STOCK_STAGE, self.state, other.state)


@dataclass(frozen=True, slots=True)
class Line:
    """One line of an order as shown: what was ordered, and how it was priced once it was.

    ``name`` and ``unit_price`` are what the order was confirmed with; until then (and for an
    order rejected before) the catalog's current name stands in, see :meth:`named`.
    """

    product_id: str
    quantity: int
    sku: str | None = None
    name: str | None = None
    unit_price: Money | None = None

    def named(self, product: Product | None) -> Line:
        """This line, with the catalog's name and SKU where the order has none of its own."""
        if product is None or self.name is not None:
            return self
        return Line(self.product_id, self.quantity, product.sku, product.name, self.unit_price)


@dataclass
class OrderView:
    """One order of the history, as far as the events seen so far tell."""

    order_id: str
    customer_id: str | None = None
    status: OrderStatus | None = None
    """None while no event of the orders topic has been seen: the order is not listed yet."""
    placed_at: datetime | None = None
    """The moment of the earliest event the orders service told about the order."""
    updated_at: datetime | None = None
    """The moment of the latest event about the order, from any service."""
    reason: str | None = None
    total: Money | None = None
    ordered: tuple[OrderItem, ...] = ()
    priced: tuple[PricedItem, ...] = ()
    payment: Payment | None = None
    stock: Stock | None = None
    delivery: Delivery | None = None
    """Where and how the order is delivered, as placed; None for an order placed without."""

    @property
    def listed(self) -> bool:
        """Whether the order is shown to its customer: the orders service has told of it."""
        return self.status is not None and self.customer_id is not None

    @property
    def lines(self) -> tuple[Line, ...]:
        """The order's lines: as priced at the checkout once it was, else as ordered."""
        if self.priced:
            return tuple(
                Line(item.product_id, item.quantity, item.sku, item.name, item.unit_price)
                for item in self.priced
            )
        return tuple(Line(item.product_id, item.quantity) for item in self.ordered)

    def apply(self, event: Event) -> None:  # noqa: PLR0912 - one case per kind of event
        """Merge what ``event`` tells about this order; TypeError if it is not about an order."""
        match event:
            case OrderPlaced():
                self._told_by_orders(event.customer_id, OrderStatus.PENDING, event.occurred_at)
                self.ordered = event.items
                self.delivery = event.delivery
            case OrderConfirmed():
                self._told_by_orders(event.customer_id, OrderStatus.CONFIRMED, event.occurred_at)
                self.priced = event.items
                self.total = event.total
            case OrderRejected():
                self._told_by_orders(event.customer_id, OrderStatus.REJECTED, event.occurred_at)
                self.reason = event.reason
            case OrderCancelled():
                self._told_by_orders(event.customer_id, OrderStatus.CANCELLED, event.occurred_at)
                if self.total is None:  # the confirmation's total, if both tell one
                    self.total = event.total
            case PaymentAuthorized():
                self._pay(event, Payment(PaymentState.AUTHORIZED, event.amount))
            case PaymentDeclined():
                self._pay(event, Payment(PaymentState.DECLINED, event.amount, event.reason))
            case PaymentCaptured():
                self._pay(event, Payment(PaymentState.CAPTURED, event.amount))
            case PaymentVoided():
                self._pay(event, Payment(PaymentState.VOIDED, event.amount))
            case PaymentRefunded():
                self._pay(event, Payment(PaymentState.REFUNDED, event.amount))
            case StockReserved():
                self._stock(event.occurred_at, Stock(StockState.RESERVED, event.lines))
            case ReservationCommitted():
                self._stock(event.occurred_at, Stock(StockState.COMMITTED, event.lines))
            case ReservationReleased():
                self._stock(event.occurred_at, Stock(StockState.RELEASED, event.lines))
            case ReservationExpired():
                self._stock(event.occurred_at, Stock(StockState.EXPIRED, event.lines))
            case ReservationReturned():
                self._stock(event.occurred_at, Stock(StockState.RETURNED, event.lines))
            case _:
                raise TypeError(f"{event.event_type} is not about an order")

    def _told_by_orders(self, customer_id: str, status: OrderStatus, occurred_at: str) -> None:
        self.customer_id = self.customer_id or customer_id
        if self.status is None or _later(_ORDER_STAGE, status, self.status):
            self.status = status
        moment = moment_of(occurred_at)
        self.placed_at = moment if self.placed_at is None else min(self.placed_at, moment)
        self._seen_at(moment)

    def _pay(self, event: PaymentEvent, payment: Payment) -> None:
        self.customer_id = self.customer_id or event.customer_id
        if payment.after(self.payment):
            self.payment = payment
        self._seen_at(moment_of(event.occurred_at))

    def _stock(self, occurred_at: str, stock: Stock) -> None:
        if stock.after(self.stock):
            self.stock = stock
        self._seen_at(moment_of(occurred_at))

    def _seen_at(self, moment: datetime) -> None:
        self.updated_at = moment if self.updated_at is None else max(self.updated_at, moment)


@dataclass(frozen=True, slots=True)
class Product:
    """A product as the catalog last told of it: the highest version seen wins."""

    product_id: str
    sku: str
    name: str
    version: int

    @classmethod
    def told_by(cls, event: ProductCreated | ProductUpdated) -> Product:
        return cls(event.product_id, event.sku, event.name, event.version)

    def after(self, other: Product | None) -> bool:
        """Whether this is a later version than ``other`` (None: the product is new here)."""
        return other is None or self.version > other.version


@dataclass
class History:
    """Order views and products by id: what a rebuild folds the whole archive into."""

    orders: dict[str, OrderView] = field(default_factory=dict)
    products: dict[str, Product] = field(default_factory=dict)

    def apply(self, event: Event) -> None:
        """Merge ``event`` into the order or product it is about; others change nothing."""
        if isinstance(event, ProductCreated | ProductUpdated):
            product = Product.told_by(event)
            if product.after(self.products.get(product.product_id)):
                self.products[product.product_id] = product
            return
        order_id = order_id_of(event)
        if order_id is not None:
            self.orders.setdefault(order_id, OrderView(order_id)).apply(event)


def order_id_of(event: Event) -> str | None:
    """The order an event is about, or None if it is about no order.

    Inventory reserves stock under the order's id, so a reservation's id is its order's.
    """
    match event:
        case (
            OrderPlaced()
            | OrderConfirmed()
            | OrderRejected()
            | OrderCancelled()
            | PaymentAuthorized()
            | PaymentDeclined()
            | PaymentCaptured()
            | PaymentVoided()
            | PaymentRefunded()
        ):
            return event.order_id
        case (
            StockReserved()
            | ReservationCommitted()
            | ReservationReleased()
            | ReservationExpired()
            | ReservationReturned()
        ):
            return event.reservation_id
        case _:
            return None


def moment_of(occurred_at: str) -> datetime:
    """An event's ISO 8601 moment in UTC; ValueError if it is none, or has no time zone."""
    moment = datetime.fromisoformat(occurred_at)
    if moment.tzinfo is None:
        raise ValueError(f"the moment {occurred_at!r} has no time zone")
    return moment.astimezone(UTC)


_State = TypeVar("_State", OrderStatus, PaymentState, StockState)


def _later(stages: dict[_State, int], new: _State, old: _State) -> bool:
    return (stages[new], new.value) > (stages[old], old.value)
