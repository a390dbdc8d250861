"""The Order aggregate, its lines, and the checkout's steps as the order records them.

The checkout is a saga of idempotent steps (``orders.domain.saga`` defines it); the order
keeps a log of their outcomes and derives everything else from it: which step comes next,
which compensations are due, whether it is settled. The step whose command is out is noted
with its deadline, so a step that never answers is timed out and its effect, in doubt,
undone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from orders.domain.commands import RunStep
from orders.domain.errors import (
    CheckoutRefused,
    InvalidOrder,
    OrderMovedOn,
    OrderNotCancellable,
)
from orders.domain.events import (
    Event,
    OrderCancelled,
    OrderConfirmed,
    OrderPlaced,
    OrderRejected,
)
from orders.domain.saga import CHECKOUT_SAGA, Step

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime

    from contracts import Money
    from orders.domain.commands import RequestedItem

MAX_QUANTITY: Final = 100
MAX_LINES: Final = 50
ID_MAX_LENGTH: Final = 100
CARD_TOKEN_MAX_LENGTH: Final = 200
IDEMPOTENCY_KEY_MAX_LENGTH: Final = 128
CANCELLED_BY_CUSTOMER: Final = "cancelled by the customer"


class OrderStatus(StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"


CHECKOUT: Final = CHECKOUT_SAGA.steps


class Outcome(StrEnum):
    DONE = "done"
    REFUSED = "refused"
    FAILED = "failed"
    TIMED_OUT = "timed-out"
    """No answer came before the step's deadline: its effect is in doubt, hence undone."""


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One entry of an order's checkout log."""

    step: Step
    outcome: Outcome
    at: datetime
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ProductSnapshot:
    """A product as the catalog described it when the order was priced."""

    product_id: str
    sku: str
    name: str
    price: Money


@dataclass(frozen=True, slots=True)
class StepDone:
    """A step that succeeded, with what it learned: the products when pricing, the payment
    when authorizing."""

    step: Step
    products: Mapping[str, ProductSnapshot] = field(default_factory=dict)
    payment_id: str | None = None


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


class Order:
    """A customer's order. Change it only through its methods, which keep it consistent."""

    def __init__(
        self,
        *,
        id: str,  # noqa: A002 - the aggregate's identity is called id everywhere
        customer_id: str,
        lines: Sequence[OrderLine],
        card_token: str,
        created_at: datetime,
        updated_at: datetime | None = None,
        status: OrderStatus = OrderStatus.PENDING,
        reason: str | None = None,
        last_error: str | None = None,
        payment_id: str | None = None,
        step_in_progress: Step | None = None,
        step_deadline: datetime | None = None,
        steps: Sequence[StepRecord] = (),
        version: int = 1,
    ) -> None:
        self.id = id
        self.customer_id = customer_id
        self.lines = list(lines)
        self.card_token = card_token
        self.created_at = created_at
        self.updated_at = updated_at or created_at
        self.status = status
        self.reason = reason
        self.last_error = last_error
        self.payment_id = payment_id
        self.step_in_progress = step_in_progress
        self.step_deadline = step_deadline
        self.steps = list(steps)
        self.version = version
        self.events: list[Event] = []
        self.commands: list[RunStep] = []
        """The saga's commands this change sends, in the transaction that stores it."""

    @classmethod
    def place(
        cls,
        *,
        customer_id: str,
        items: Sequence[RequestedItem],
        card_token: str,
        at: datetime,
    ) -> Order:
        """A new PENDING order; items naming the same product are merged into one line."""
        order = cls(
            id=str(uuid.uuid4()),
            customer_id=_checked_id("customer_id", customer_id),
            lines=_merged_lines(items),
            card_token=_checked_card_token(card_token),
            created_at=at,
        )
        order.events.append(
            OrderPlaced(
                order_id=order.id,
                customer_id=order.customer_id,
                items=tuple((line.product_id, line.quantity) for line in order.lines),
            )
        )
        return order

    @property
    def total(self) -> Money | None:
        """The sum of the line totals, once every line is priced."""
        totals = [total for line in self.lines if (total := line.line_total) is not None]
        if not totals or len(totals) < len(self.lines):
            return None
        return sum(totals[1:], start=totals[0])

    def has_done(self, step: Step) -> bool:
        return any(r.step is step and r.outcome is Outcome.DONE for r in self.steps)

    def _has_outcome(self, step: Step) -> bool:
        return any(r.step is step and r.outcome is not Outcome.FAILED for r in self.steps)

    @property
    def awaiting_confirmation(self) -> bool:
        """Pending with every checkout step done."""
        return self.status is OrderStatus.PENDING and all(self.has_done(s) for s in CHECKOUT)

    def next_step(self) -> Step | None:
        """What to do next: a step in doubt first, then the checkout or the compensations."""
        if self.step_in_progress is not None:
            return self.step_in_progress
        if self.status is OrderStatus.PENDING:
            return next((step for step in CHECKOUT if not self.has_done(step)), None)
        due = self.compensations_due()
        return due[0] if due else None

    def compensations_due(self) -> list[Step]:
        """The undoing a rejected or cancelled order still needs, in the order to run it.

        A step that timed out may have had its effect: it is undone like one that was done.
        """
        if self.status not in {OrderStatus.REJECTED, OrderStatus.CANCELLED}:
            return []
        due = []
        for step, undo in CHECKOUT_SAGA.compensations:
            superseded_by = CHECKOUT_SAGA.superseded_by(step)
            if (
                self._maybe_done(step)
                and not (superseded_by and self.has_done(superseded_by))
                and not self.has_done(undo)
            ):
                due.append(undo)
        return due

    def _maybe_done(self, step: Step) -> bool:
        return any(
            r.step is step and r.outcome in {Outcome.DONE, Outcome.TIMED_OUT} for r in self.steps
        )

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
        self.step_in_progress = step
        timeout = CHECKOUT_SAGA.timeout(step)
        self.step_deadline = None if timeout is None else at + timeout
        self.updated_at = at
        self.commands.append(RunStep(self.id, step))

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
        """Whether the step in progress is past its deadline at ``at``."""
        return self.step_deadline is not None and at >= self.step_deadline

    def time_out(self, step: Step, at: datetime) -> None:
        """Give up on a step that went unanswered past its deadline; a pending order is
        rejected for it, and what the step may have done is undone."""
        if self.step_in_progress is not step or not self.overdue(at):
            raise OrderMovedOn(self.id, f"{step} is not overdue")
        timeout = CHECKOUT_SAGA.timeout(step)
        seconds = 0 if timeout is None else int(timeout.total_seconds())
        reason = f"{step} got no answer in {seconds} s"
        self._record(step, Outcome.TIMED_OUT, at, reason)
        self.last_error = None
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
        if done.step is Step.PRICE:
            self.lines = _priced_lines(self.lines, done.products)
            detail = f"total {self._priced_total().format()}"
        elif done.step is Step.AUTHORIZE_PAYMENT:
            if done.payment_id is None:
                raise ValueError("an authorized payment has an id")
            self.payment_id = done.payment_id
            detail = f"payment {done.payment_id}"
        self._record(done.step, Outcome.DONE, at, detail)
        self.last_error = None

    def refuse(self, step: Step, reason: str, at: datetime) -> None:
        """Record that a step was refused for good; a pending order is rejected for it."""
        if self._has_outcome(step):
            return
        self._record(step, Outcome.REFUSED, at, reason)
        self.last_error = None
        if self.status is OrderStatus.PENDING:
            self.reject(reason, at)

    def fail(self, step: Step, error: str, at: datetime) -> None:
        """Record that a step could not be completed now; it stays to do (or in doubt).

        A failure repeating the one before it is not logged again, so an outage that lasts
        through many resumptions leaves one entry, not one per attempt.
        """
        if self._has_outcome(step):
            return
        self.last_error = f"{step}: {error}"
        self.updated_at = at
        last = self.steps[-1] if self.steps else None
        if last is None or (last.step, last.outcome) != (step, Outcome.FAILED):
            self.steps.append(StepRecord(step, Outcome.FAILED, at, error))

    def confirm(self, at: datetime) -> None:
        total = self.total
        if not self.awaiting_confirmation or total is None:
            raise OrderMovedOn(self.id, f"cannot confirm a {self.status} order now")
        self.status = OrderStatus.CONFIRMED
        self.updated_at = at
        self.events.append(
            OrderConfirmed(order_id=self.id, customer_id=self.customer_id, total=total)
        )

    def reject(self, reason: str, at: datetime) -> None:
        if self.status is not OrderStatus.PENDING:
            raise OrderMovedOn(self.id, f"cannot reject a {self.status} order")
        self.status = OrderStatus.REJECTED
        self.reason = reason
        self.updated_at = at
        self.events.append(
            OrderRejected(order_id=self.id, customer_id=self.customer_id, reason=reason)
        )

    def cancel(self, at: datetime) -> None:
        """The customer cancels a pending or confirmed order; cancelling again is harmless.

        What the checkout did is undone afterwards, by the compensations this makes due.
        """
        if self.status is OrderStatus.CANCELLED:
            return
        if self.status is OrderStatus.REJECTED:
            raise OrderNotCancellable(self.id, self.status)
        was_confirmed = self.status is OrderStatus.CONFIRMED
        self.status = OrderStatus.CANCELLED
        self.reason = CANCELLED_BY_CUSTOMER
        self.updated_at = at
        self.events.append(
            OrderCancelled(
                order_id=self.id, customer_id=self.customer_id, was_confirmed=was_confirmed
            )
        )

    def _record(self, step: Step, outcome: Outcome, at: datetime, detail: str) -> None:
        self.steps.append(StepRecord(step, outcome, at, detail))
        if self.step_in_progress is step:
            self.step_in_progress = None
            self.step_deadline = None
        if step is Step.AUTHORIZE_PAYMENT:
            # Kept only as long as the payment may have to be asked for (again).
            self.card_token = ""
        self.updated_at = at

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
    lines: Sequence[OrderLine], products: Mapping[str, ProductSnapshot]
) -> list[OrderLine]:
    currencies = sorted({str(products[line.product_id].price.currency) for line in lines})
    if len(currencies) > 1:
        raise CheckoutRefused(f"products priced in several currencies: {', '.join(currencies)}")
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
