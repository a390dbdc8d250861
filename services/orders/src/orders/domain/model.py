"""The Order aggregate: a customer's order, folded from the events of its stream.

The checkout is a saga of idempotent steps (``orders.domain.saga_definition`` defines it); the order
keeps a log of their outcomes and derives everything else from it: which step comes next,
which compensations are due, whether it is settled. The step whose command is out is noted
with its deadline, so a step that never answers is timed out and its effect, in doubt,
undone.

Every change is an event: a command method checks the rules, then records the event, which
``apply`` folds into the state exactly as it does when the order is loaded again. The store
appends ``pending_events`` at the version the order was loaded at, so of two writers who
loaded the same version only the first stores anything.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Final, assert_never

from contracts import Money
from contracts.events import timestamp
from orders.domain.errors import (
    CheckoutRefused,
    InvalidOrder,
    OrderMovedOn,
    OrderNotCancellable,
)
from orders.domain.events import (
    Delivery,
    Event,
    OrderCancelled,
    OrderConfirmed,
    OrderImported,
    OrderItem,
    OrderLine,
    OrderPlaced,
    OrderPriced,
    OrderRejected,
    PricedItem,
    StepBegun,
    StepRecorded,
)
from orders.domain.saga_definition import CHECKOUT_SAGA, Outcome, Step
from orders.domain.step_log import StepLog, StepRecord

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from orders.domain.commands import RequestedItem

MAX_QUANTITY: Final = 100
MAX_LINES: Final = 50
ID_MAX_LENGTH: Final = 100
CARD_TOKEN_MAX_LENGTH: Final = 200
CANCELLED_BY_CUSTOMER: Final = "cancelled by the customer"

CHECKOUT: Final = CHECKOUT_SAGA.steps


class OrderStatus(StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True, slots=True)
class ProductSnapshot:
    """A product as the catalog described it when the order was priced."""

    product_id: str
    sku: str
    name: str
    price: Money


@dataclass(frozen=True, slots=True)
class OrderState:
    """An order's whole state at one version, as a snapshot keeps it (the card token and
    the first failure of the step in progress aside: a snapshot is taken as it settles)."""

    customer_id: str
    lines: tuple[OrderLine, ...]
    status: OrderStatus
    reason: str | None
    last_error: str | None
    payment_id: str | None
    step_in_progress: Step | None
    step_deadline: datetime | None
    steps: tuple[StepRecord, ...]
    created_at: datetime
    updated_at: datetime
    delivery: Delivery | None = None
    delivery_price: Money | None = None


@dataclass(frozen=True, slots=True)
class StepDone:
    """A step that succeeded, with what it learned: the products when pricing, the payment
    when authorizing."""

    step: Step
    products: Mapping[str, ProductSnapshot] = field(default_factory=dict)
    payment_id: str | None = None


class Order:
    """A customer's order. Change it only through its methods, which keep it consistent.

    ``Order(id)`` is an order with no events yet (version 0); ``Order.place`` makes a new one.
    ``card_token`` is not in any event: it is kept beside the stream only until the payment
    is authorized (or refused), or the order settles without a payment, then forgotten.
    """

    def __init__(self, id: str) -> None:  # noqa: A002 - the aggregate's identity is called id everywhere
        self.id = id
        self.customer_id = ""
        self.lines: list[OrderLine] = []
        self.card_token = ""
        self.status = OrderStatus.PENDING
        self.reason: str | None = None
        self.last_error: str | None = None
        self.payment_id: str | None = None
        self.step_in_progress: Step | None = None
        self.step_deadline: datetime | None = None
        self.delivery: Delivery | None = None
        """Where and how the order goes; None for one placed without (older clients)."""
        self.delivery_price: Money | None = None
        """What the delivery costs, priced as the order was placed and part of its total;
        None without a delivery, and for one placed when deliveries were all free."""
        # When the step in progress first failed: its first attempt, give or take that
        # attempt's own time. Before it, the step has waited only in the queue.
        self.step_first_failed_at: datetime | None = None
        self.log = StepLog()
        """The checkout's log: every step's outcome, oldest first."""
        self._created_at: datetime | None = None
        self._updated_at: datetime | None = None
        self.version = 0
        """How many events made this order, those not yet stored included."""
        self.pending_events: list[Event] = []
        """The events recorded since the order was loaded, for the store to append."""

    @classmethod
    def restored(cls, id: str, version: int, state: OrderState) -> Order:  # noqa: A002
        """The order as a snapshot of it at ``version`` holds it."""
        order = cls(id)
        order._restore(state)
        order._updated_at = state.updated_at
        order.version = version
        return order

    def state(self) -> OrderState:
        """The order's state, for a snapshot."""
        return OrderState(
            customer_id=self.customer_id,
            lines=tuple(self.lines),
            status=self.status,
            reason=self.reason,
            last_error=self.last_error,
            payment_id=self.payment_id,
            step_in_progress=self.step_in_progress,
            step_deadline=self.step_deadline,
            steps=self.log.records,
            created_at=self.created_at,
            updated_at=self.updated_at,
            delivery=self.delivery,
            delivery_price=self.delivery_price,
        )

    @classmethod
    def place(
        cls,
        *,
        customer_id: str,
        items: Sequence[RequestedItem],
        card_token: str,
        at: datetime,
        delivery: Delivery | None = None,
        delivery_price: Money | None = None,
    ) -> Order:
        """A new PENDING order; items naming the same product are merged into one line.

        ``delivery_price`` is what the delivery costs (orders' price of its option): it is
        added to the order's total, so the payment covers it.
        """
        order = cls(str(uuid.uuid4()))
        customer_id = _checked_id("customer_id", customer_id)
        lines = _merged_lines(items)
        order.card_token = _checked_card_token(card_token)
        if delivery_price is not None and (delivery is None or delivery_price.amount < 0):
            raise InvalidOrder("delivery", "only a delivery has a price, and it is not negative")
        order._record(
            OrderPlaced(
                order_id=order.id,
                customer_id=customer_id,
                items=tuple(OrderItem(line.product_id, line.quantity) for line in lines),
                occurred_at=timestamp(at),
                delivery=delivery,
                delivery_price=delivery_price,
            )
        )
        return order

    @property
    def created_at(self) -> datetime:
        if self._created_at is None:
            raise ValueError(f"order {self.id} has no events")
        return self._created_at

    @property
    def steps(self) -> list[StepRecord]:
        """The checkout's log, oldest first."""
        return list(self.log.records)

    @property
    def updated_at(self) -> datetime:
        if self._updated_at is None:
            raise ValueError(f"order {self.id} has no events")
        return self._updated_at

    @property
    def total(self) -> Money | None:
        """The sum of the line totals and the delivery's price, once every line is priced."""
        totals = [total for line in self.lines if (total := line.line_total) is not None]
        if not totals or len(totals) < len(self.lines):
            return None
        if self.delivery_price is not None:
            totals.append(self.delivery_price)
        return sum(totals[1:], start=totals[0])

    def has_done(self, step: Step) -> bool:
        return self.log.has_done(step)

    @property
    def awaiting_confirmation(self) -> bool:
        """Pending with every checkout step done."""
        return self.status is OrderStatus.PENDING and self.log.checkout_done

    def next_step(self) -> Step | None:
        """What to do next: a step in doubt first, then the checkout or the compensations."""
        if self.step_in_progress is not None:
            return self.step_in_progress
        if self.status is OrderStatus.PENDING:
            return self.log.next_forward_step()
        due = self.compensations_due()
        return due[0] if due else None

    def compensations_due(self) -> list[Step]:
        """The undoing a rejected or cancelled order still needs, in the order to run it.

        A step that timed out may have had its effect: it is undone like one that was done.
        """
        if self.status not in {OrderStatus.REJECTED, OrderStatus.CANCELLED}:
            return []
        return self.log.compensations_due()

    @property
    def settled(self) -> bool:
        """Nothing is left to do: confirmed, or rejected/cancelled with everything undone."""
        return (
            self.status is not OrderStatus.PENDING
            and self.step_in_progress is None
            and not self.compensations_due()
        )

    def begin(self, step: Step, at: datetime) -> None:
        """Note that the command for ``step``, the next step, is out; a forward step gets
        the deadline the saga gives it, a compensation none (it runs until it is done)."""
        if self.step_in_progress is not None or self.next_step() is not step:
            raise OrderMovedOn(self.id, f"{step} is not next ({self.status})")
        timeout = CHECKOUT_SAGA.timeout(step)
        deadline = None if timeout is None else at + timeout
        self._record(StepBegun(order_id=self.id, step=step, deadline=deadline, at=at))

    def advance(self, at: datetime) -> None:
        """Make the saga's next move, if it is this order's to make now: confirm once every
        step is done, or begin the next step (or compensation) unless one is already out."""
        if self.awaiting_confirmation:
            self.confirm(at)
            return
        step = self.next_step()
        if step is not None and self.step_in_progress is None:
            self.begin(step, at)

    def overdue(self, at: datetime) -> bool:
        """Whether the step in progress is past its deadline at ``at``.

        The deadline counts from the step's first attempt, not from when its command was
        sent: a command that waited in a queue behind a stuck dependency (head-of-line) is
        tried once before it can time out, so an unrelated order is not rejected for the
        wait. A step never attempted is never overdue.
        """
        if self.step_deadline is None or at < self.step_deadline:
            return False
        if self.step_first_failed_at is None or self.step_in_progress is None:
            return False
        timeout = CHECKOUT_SAGA.timeout(self.step_in_progress)
        if timeout is None:
            return False
        return at >= max(self.step_deadline, self.step_first_failed_at + timeout)

    def waited_past_deadline(self, at: datetime) -> bool:
        """Whether the step in progress reached its deadline before its first attempt."""
        return (
            self.step_deadline is not None
            and at >= self.step_deadline
            and self.step_first_failed_at is None
        )

    def start_late(self, step: Step, at: datetime) -> None:
        """Note that ``step`` is first attempted only now, past its deadline: the deadline
        counts from here, so even an attempt that never ends is timed out in time."""
        if self.step_in_progress is not step or not self.waited_past_deadline(at):
            raise OrderMovedOn(self.id, f"{step} did not wait past its deadline")
        self._record_step(
            step, Outcome.FAILED, at, "waited past its deadline in the queue; first attempt now"
        )

    def time_out(self, step: Step, at: datetime) -> None:
        """Give up on a step that went unanswered past its deadline; a pending order is
        rejected for it, and what the step may have done is undone."""
        if self.step_in_progress is not step or not self.overdue(at):
            raise OrderMovedOn(self.id, f"{step} is not overdue")
        timeout = CHECKOUT_SAGA.timeout(step)
        seconds = 0 if timeout is None else int(timeout.total_seconds())
        reason = f"{step} got no answer in {seconds} s"
        self._record_step(step, Outcome.TIMED_OUT, at, reason)
        if self.status is OrderStatus.PENDING:
            self.reject(reason, at)

    def record_done(self, done: StepDone, at: datetime) -> None:
        """Record a step's success; a repeated report of the same success changes nothing.

        A success is recorded even after the step was refused (two drivers, the stock came
        back in between), so that what it did is undone. Raises CheckoutRefused if the
        products priced cannot make one order (several currencies).
        """
        if self.has_done(done.step):
            return
        detail = ""
        payment_id = None
        if done.step is Step.PRICE:
            lines = _priced_lines(self.lines, done.products, self.delivery_price)
            self._record(OrderPriced(order_id=self.id, lines=tuple(lines), at=at))
            detail = f"total {self._priced_total().format()}"
        elif done.step is Step.AUTHORIZE_PAYMENT:
            if done.payment_id is None:
                raise ValueError("an authorized payment has an id")
            payment_id = done.payment_id
            detail = f"payment {done.payment_id}"
        self._record_step(done.step, Outcome.DONE, at, detail, payment_id=payment_id)

    def refuse(self, step: Step, reason: str, at: datetime) -> None:
        """Record that a step was refused for good; a pending order is rejected for it."""
        if self.log.has_outcome(step):
            return
        self._record_step(step, Outcome.REFUSED, at, reason)
        if self.status is OrderStatus.PENDING:
            self.reject(reason, at)

    def fail(self, step: Step, error: str, at: datetime) -> None:
        """Record that a step could not be completed now; it stays to do (or in doubt).

        A failure repeating the one before it is not logged again, so an outage that lasts
        through many redeliveries leaves one entry, not one per attempt.
        """
        if self.log.has_outcome(step) or self.log.repeats_failure(step):
            return
        self._record_step(step, Outcome.FAILED, at, error)

    def confirm(self, at: datetime) -> None:
        total = self.total
        if not self.awaiting_confirmation or total is None:
            raise OrderMovedOn(self.id, f"cannot confirm a {self.status} order now")
        self._record(
            OrderConfirmed(
                order_id=self.id,
                customer_id=self.customer_id,
                items=tuple(_priced_item(self.id, line) for line in self.lines),
                total=total,
                occurred_at=timestamp(at),
            )
        )

    def reject(self, reason: str, at: datetime) -> None:
        if self.status is not OrderStatus.PENDING:
            raise OrderMovedOn(self.id, f"cannot reject a {self.status} order")
        self._record(
            OrderRejected(
                order_id=self.id,
                customer_id=self.customer_id,
                reason=reason,
                occurred_at=timestamp(at),
            )
        )

    def cancel(self, at: datetime) -> None:
        """The customer cancels a pending or confirmed order; cancelling again is harmless.

        What the checkout did is undone afterwards, by the compensations this makes due.
        """
        if self.status is OrderStatus.CANCELLED:
            return
        if self.status is OrderStatus.REJECTED:
            raise OrderNotCancellable(self.id, self.status)
        self._record(
            OrderCancelled(
                order_id=self.id,
                customer_id=self.customer_id,
                was_confirmed=self.status is OrderStatus.CONFIRMED,
                total=self.total,
                occurred_at=timestamp(at),
            )
        )

    def apply(self, event: Event) -> None:
        """Fold one event into the state and count it (also how a stored order is rebuilt)."""
        match event:
            case OrderPlaced():
                self.customer_id = event.customer_id
                self.lines = [OrderLine(i.product_id, i.quantity) for i in event.items]
                self._created_at = datetime.fromisoformat(event.occurred_at)
                self.delivery = event.delivery
                self.delivery_price = event.delivery_price
            case OrderPriced():
                self.lines = list(event.lines)
            case StepBegun():
                self.step_in_progress = event.step
                self.step_deadline = event.deadline
                self.step_first_failed_at = None
            case StepRecorded():
                self._apply_step(event)
            case OrderConfirmed():
                self.status = OrderStatus.CONFIRMED
            case OrderRejected():
                self.status = OrderStatus.REJECTED
                self.reason = event.reason
            case OrderCancelled():
                self.status = OrderStatus.CANCELLED
                self.reason = CANCELLED_BY_CUSTOMER
            case OrderImported():
                self._restore(
                    OrderState(
                        customer_id=event.customer_id,
                        lines=event.lines,
                        status=OrderStatus(event.status),
                        reason=event.reason,
                        last_error=event.last_error,
                        payment_id=event.payment_id,
                        step_in_progress=event.step_in_progress,
                        step_deadline=event.step_deadline,
                        steps=event.steps,
                        created_at=event.created_at,
                        updated_at=event.updated_at,
                    )
                )
            case _:
                assert_never(event)
        self._updated_at = _at(event)
        self.version += 1

    def _apply_step(self, event: StepRecorded) -> None:
        record = event.record
        self.log = self.log.with_record(record)
        if record.outcome is Outcome.FAILED:
            self.last_error = f"{record.step}: {record.detail}"
            if record.step is self.step_in_progress and self.step_first_failed_at is None:
                self.step_first_failed_at = record.at
            return
        self.last_error = None
        if event.payment_id is not None:
            self.payment_id = event.payment_id
        if self.step_in_progress is record.step:
            self.step_in_progress = None
            self.step_deadline = None
            self.step_first_failed_at = None
        if record.step is Step.AUTHORIZE_PAYMENT:
            # Kept only as long as the payment may have to be asked for (again).
            self.card_token = ""

    def _restore(self, state: OrderState) -> None:
        self.customer_id = state.customer_id
        self.lines = list(state.lines)
        self.status = state.status
        self.reason = state.reason
        self.last_error = state.last_error
        self.payment_id = state.payment_id
        self.step_in_progress = state.step_in_progress
        self.step_deadline = state.step_deadline
        self.log = StepLog(state.steps)
        self._created_at = state.created_at
        self.delivery = state.delivery
        self.delivery_price = state.delivery_price

    def _record(self, event: Event) -> None:
        self.apply(event)
        self.pending_events.append(event)

    def _record_step(
        self,
        step: Step,
        outcome: Outcome,
        at: datetime,
        detail: str,
        *,
        payment_id: str | None = None,
    ) -> None:
        self._record(
            StepRecorded(
                order_id=self.id,
                step=step,
                outcome=outcome,
                detail=detail,
                at=at,
                payment_id=payment_id,
            )
        )

    def _priced_total(self) -> Money:
        total = self.total
        if total is None:
            raise ValueError("every line is priced by now")
        return total

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Order) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"Order(id={self.id!r}, status={self.status}, version={self.version})"


def _at(event: Event) -> datetime:
    """When ``event`` happened."""
    match event:
        case OrderPlaced() | OrderConfirmed() | OrderRejected() | OrderCancelled():
            return datetime.fromisoformat(event.occurred_at)
        case OrderImported():
            return event.updated_at
        case _:
            return event.at


def _checked_id(field_name: str, value: str) -> str:
    value = value.strip()
    if not value or len(value) > ID_MAX_LENGTH:
        raise InvalidOrder(field_name, f"must be 1-{ID_MAX_LENGTH} characters")
    return value


def _checked_card_token(token: str) -> str:
    if not token or len(token) > CARD_TOKEN_MAX_LENGTH:
        raise InvalidOrder("card_token", f"must be 1-{CARD_TOKEN_MAX_LENGTH} characters")
    return token


def _merged_lines(items: Sequence[RequestedItem]) -> list[OrderLine]:
    if not items:
        raise InvalidOrder("items", "an order needs at least one item")
    quantities: dict[str, int] = {}
    for item in items:
        product_id = _checked_id("product_id", item.product_id)
        if not 1 <= item.quantity <= MAX_QUANTITY:
            raise InvalidOrder("quantity", f"must be 1-{MAX_QUANTITY}; got {item.quantity}")
        quantities[product_id] = quantities.get(product_id, 0) + item.quantity
    if len(quantities) > MAX_LINES:
        raise InvalidOrder("items", f"at most {MAX_LINES} different products per order")
    for product_id, quantity in quantities.items():
        if quantity > MAX_QUANTITY:
            raise InvalidOrder(
                "quantity",
                f"product {product_id} adds up to {quantity}, more than {MAX_QUANTITY}",
            )
    return [OrderLine(product_id=p, quantity=q) for p, q in quantities.items()]


def _priced_lines(
    lines: Sequence[OrderLine],
    products: Mapping[str, ProductSnapshot],
    delivery_price: Money | None,
) -> list[OrderLine]:
    currencies = sorted({str(products[line.product_id].price.currency) for line in lines})
    if len(currencies) > 1:
        raise CheckoutRefused(f"products priced in several currencies: {', '.join(currencies)}")
    if delivery_price is not None and [str(delivery_price.currency)] != currencies:
        raise CheckoutRefused(
            f"products priced in {currencies[0]}, the delivery in {delivery_price.currency}"
        )
    return [
        OrderLine(
            product_id=line.product_id,
            quantity=line.quantity,
            sku=products[line.product_id].sku,
            name=products[line.product_id].name,
            unit_price=products[line.product_id].price,
        )
        for line in lines
    ]


def _priced_item(order_id: str, line: OrderLine) -> PricedItem:
    if line.sku is None or line.name is None or line.unit_price is None:
        raise ValueError(f"order {order_id} is confirmed with an unpriced line")
    return PricedItem(
        product_id=line.product_id,
        sku=line.sku,
        name=line.name,
        quantity=line.quantity,
        unit_price=line.unit_price,
    )
