"""What the service layer needs from storage and from the other services, as protocols."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from chassis import idempotency, unit_of_work

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from contracts import Money
    from orders.domain.model import Order, ProductSnapshot


class NoUsableAnswer(Exception):  # noqa: N818 - a state of another service, not a bug of ours
    """Another service gave no usable answer: whether the call took effect is unknown.

    ``transient`` failures (it could not be reached, it said to come back later) are worth
    trying again soon; the others (an answer that cannot be read) are not.
    """

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True, slots=True)
class Receipt:
    """Which command is being handled, as the inbox remembers it: its id within the group
    of consumers that took it (a command published twice has one id)."""

    group: str
    command_id: str


class HandledCommands(Protocol):
    """The saga's commands already handled, recorded in the transaction they changed."""

    async def seen(self, receipt: Receipt) -> bool:
        """Whether the command already had its effect."""

    async def record(self, receipt: Receipt) -> None:
        """Note the command handled; two transactions recording one command cannot both
        commit."""


@dataclass(slots=True)
class IdempotencyRecord(idempotency.IdempotencyRecord):
    """The order an Idempotency-Key placed (the key and the request's digest: the chassis's)."""

    order_id: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ListPosition:
    """A place in a customer's orders, newest first: the order listed there, by its key.

    Orders placed later sort before it, so listing what comes after a position is never
    disturbed by new orders: a walk from page to page meets every older order exactly once.
    """

    created_at: datetime
    order_id: str


class OrderRepository(Protocol):
    async def get(self, order_id: str) -> Order | None:
        """The order with this id, or None."""

    async def add(self, order: Order) -> None:
        """Store a new order."""

    async def save(self, order: Order) -> None:
        """Store a changed order and bump its version; raises StaleOrder if another writer
        changed it since it was loaded."""

    async def for_customer(
        self, customer_id: str, *, offset: int, limit: int, before: ListPosition | None = None
    ) -> tuple[list[Order], int]:
        """One slice of a customer's orders, newest first, and how many they have in all.

        With ``before``, only the orders listed after that position (older ones) count.
        """

    async def unsettled(self) -> list[str]:
        """The ids of the orders the saga still has work on, oldest first."""


class IdempotencyKeyRepository(Protocol):
    async def get(self, key: str) -> IdempotencyRecord | None:
        """The record of this key, or None."""

    async def add(self, record: IdempotencyRecord) -> None:
        """Store a new key; raises IdempotencyKeyTaken if another request stored it first."""


class UnitOfWork(unit_of_work.UnitOfWork, Protocol):
    """One transaction over the orders' storage; leaving it without ``commit`` rolls back.

    A unit of work may be entered again after it is left, for another transaction.
    """

    @property
    def orders(self) -> OrderRepository: ...

    @property
    def idempotency_keys(self) -> IdempotencyKeyRepository: ...

    @property
    def handled_commands(self) -> HandledCommands: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]


@dataclass(frozen=True, slots=True)
class StockLine:
    sku: str
    quantity: int


class Catalog(Protocol):
    async def product(self, product_id: str) -> ProductSnapshot:
        """The product as the catalog sells it now; raises UnknownProduct, NoUsableAnswer."""


class Inventory(Protocol):
    """Stock held for an order under a reservation id; every call is idempotent by that id."""

    async def reserve(
        self, reservation_id: str, lines: Sequence[StockLine], *, ttl_seconds: int
    ) -> None:
        """Hold every line or none; raises OutOfStock, CheckoutRefused (the reservation has
        lapsed), NoUsableAnswer."""

    async def commit(self, reservation_id: str) -> None:
        """The reserved stock leaves the shelf; raises CheckoutRefused (the reservation has
        lapsed), NoUsableAnswer."""

    async def release(self, reservation_id: str) -> None:
        """The reserved stock goes back on the shelf; nothing reserved is fine, and a
        committed reservation (its stock gone) is left as it is. Raises NoUsableAnswer."""

    async def return_stock(self, reservation_id: str) -> None:
        """The committed stock comes back on the shelf, once however often asked; nothing
        committed is fine (there is nothing to return). Raises NoUsableAnswer."""


class Billing(Protocol):
    """Payments of orders; every call is idempotent (authorizing by the order id)."""

    async def authorize(
        self, order_id: str, amount: Money, card_token: str, *, customer_id: str
    ) -> str:
        """Hold the amount on the card and answer the payment id; raises PaymentDeclined,
        CheckoutRefused (billing refuses the payment), NoUsableAnswer.

        ``customer_id`` goes with the payment, so that billing's events name the customer."""

    async def held_payment(self, order_id: str) -> str | None:
        """The id of the order's payment that holds or took money, or None; raises
        NoUsableAnswer."""

    async def capture(self, payment_id: str) -> None:
        """Take the held amount; raises CheckoutRefused (it cannot be taken), NoUsableAnswer."""

    async def void(self, payment_id: str) -> None:
        """Release the held amount; a payment that holds nothing (never captured, or
        captured, or voided already) is left as it is. Raises NoUsableAnswer."""

    async def refund(self, payment_id: str) -> None:
        """Give the captured amount back; a payment that was never captured, or was
        refunded already, is left as it is. Raises NoUsableAnswer."""
