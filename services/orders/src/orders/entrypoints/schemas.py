"""The JSON the orders API reads and writes, one model per purpose."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from chassis.pagination import Page, PageModel
from chassis.schemas import MoneyModel
from contracts import Money
from orders.domain.commands import PlaceOrder, RequestedItem
from orders.domain.events import Delivery, OrderLine, StepRecord
from orders.domain.model import (
    CARD_TOKEN_MAX_LENGTH,
    ID_MAX_LENGTH,
    MAX_LINES,
    MAX_QUANTITY,
    Order,
    OrderStatus,
)

if TYPE_CHECKING:
    from collections.abc import Callable


class ItemRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: str = Field(min_length=1, max_length=ID_MAX_LENGTH)
    quantity: StrictInt = Field(ge=1, le=MAX_QUANTITY)


class PaymentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    card_token: str = Field(
        min_length=1,
        max_length=CARD_TOKEN_MAX_LENGTH,
        examples=["tok_ok"],
        description="The token of a card, from the payment form; never a card number.",
    )


class DeliveryModel(BaseModel):
    """Where and how the order is delivered (added in API 1.1; optional, so the clients of
    1.0 still place orders: theirs have none)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, examples=["Amina Benali"])
    address: str = Field(min_length=1, max_length=300, examples=["12 Derb Sidi Ahmed"])
    postcode: str = Field(min_length=1, max_length=20, examples=["30110"])
    city: str = Field(min_length=1, max_length=100, examples=["Fes"])
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166 code.", examples=["MA"])
    option: Literal["standard", "express"] = Field(
        description="standard (3-5 working days) or express (next working day)."
    )

    def to_domain(self) -> Delivery:
        return Delivery(**self.model_dump())


class OrderCreate(BaseModel):
    """An order as a customer places it; the customer is the access token's subject.

    Items naming the same product are merged into one line, whose quantity must still be
    at most 100.
    """

    model_config = ConfigDict(extra="forbid")

    items: list[ItemRequest] = Field(min_length=1, max_length=MAX_LINES)
    payment: PaymentRequest
    delivery: DeliveryModel | None = None

    def fingerprint(self, customer_id: str) -> str:
        """A digest of the customer's request, whatever its key order or spacing (a request
        without a delivery digests as it did before deliveries existed)."""
        body = self.model_dump(mode="json", exclude_none=True)
        content = {"customer_id": customer_id, **body}
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def to_command(
        self, idempotency_key: str, customer_id: str, prices: Callable[[str], Money]
    ) -> PlaceOrder:
        """The command to place this order; ``prices`` is orders' price of a delivery option."""
        delivery = self.delivery
        return PlaceOrder(
            customer_id=customer_id,
            items=tuple(RequestedItem(i.product_id, i.quantity) for i in self.items),
            card_token=self.payment.card_token,
            idempotency_key=idempotency_key,
            request_fingerprint=self.fingerprint(customer_id),
            delivery=None if delivery is None else delivery.to_domain(),
            delivery_price=None if delivery is None else prices(delivery.option),
        )


class Amount(MoneyModel):
    """An amount in integer minor units (cents for EUR) and its ISO 4217 currency."""


def _amount(money: Money | None) -> Amount | None:
    return None if money is None else Amount.from_money(money)


class DeliveryPublic(DeliveryModel):
    """Where and how the order is delivered, and what that costs (API 1.2)."""

    model_config = ConfigDict(extra="ignore")

    price: Amount | None = Field(
        default=None,
        description="What the delivery costs, included in the order's total; null for an "
        "order placed before deliveries had prices (they were free).",
    )

    @classmethod
    def from_order(cls, order: Order) -> DeliveryPublic | None:
        delivery = order.delivery
        if delivery is None:
            return None
        fields = DeliveryModel.model_validate(delivery, from_attributes=True).model_dump()
        return cls(**fields, price=_amount(order.delivery_price))


class DeliveryOptionPublic(BaseModel):
    """A way an order can travel, and its price."""

    option: Literal["standard", "express"]
    price: Amount


class DeliveryOptions(BaseModel):
    """The delivery options orders offers now; an order keeps the price it was placed at."""

    options: list[DeliveryOptionPublic]


class LinePublic(BaseModel):
    """A line of an order; sku, name and prices are null until the order is priced."""

    product_id: str
    sku: str | None
    name: str | None
    unit_price: Amount | None
    quantity: int
    line_total: Amount | None

    @classmethod
    def from_domain(cls, line: OrderLine) -> LinePublic:
        return cls(
            product_id=line.product_id,
            sku=line.sku,
            name=line.name,
            unit_price=_amount(line.unit_price),
            quantity=line.quantity,
            line_total=_amount(line.line_total),
        )


# Another service's address, as an upstream's error text may carry it: a URL's scheme and
# authority, or a host (IP, localhost) with a port, as gRPC and aiohttp write them.
_INTERNAL_ADDRESS = re.compile(
    r"\b[a-z][a-z0-9+.-]*://[^\s/'\"]+"
    r"|(?:\bipv[46]:)?(?:\b\d{1,3}(?:\.\d{1,3}){3}|\blocalhost\b|\[[0-9a-fA-F:]+\])(?::\d+)?",
    re.IGNORECASE,
)


def public_text(text: str) -> str:
    """Why a step failed, as the customer may read it: without the shop's internal addresses."""
    return _INTERNAL_ADDRESS.sub("(internal address)", text)


class StepPublic(BaseModel):
    """An entry of the checkout's log: a step and its outcome (done, refused or failed)."""

    step: str = Field(examples=["reserve-stock"])
    outcome: str = Field(examples=["done"])
    at: datetime
    detail: str

    @classmethod
    def from_domain(cls, record: StepRecord) -> StepPublic:
        return cls(
            step=record.step,
            outcome=record.outcome,
            at=record.at,
            detail=public_text(record.detail),
        )


class SagaPublic(BaseModel):
    """Where the checkout saga stands (its steps and their outcomes: ``checkout_steps``)."""

    settled: bool = Field(description="Nothing is left to do: no step out, nothing to undo.")
    step_in_progress: str | None = Field(
        description="The step (or compensation) whose command is out now.",
        examples=["capture-payment"],
    )
    step_deadline: datetime | None = Field(
        description="When that step is given up on, and undone; compensations have none."
    )

    @classmethod
    def from_domain(cls, order: Order) -> SagaPublic:
        step = order.step_in_progress
        return cls(
            settled=order.settled,
            step_in_progress=None if step is None else str(step),
            step_deadline=order.step_deadline,
        )


class OrderPublic(BaseModel):
    """An order as its customer sees it, with how far its checkout has come."""

    id: str
    customer_id: str
    status: OrderStatus = Field(description="PENDING, CONFIRMED, REJECTED or CANCELLED.")
    items: list[LinePublic]
    total: Amount | None = Field(description="Null until the order is priced.")
    reason: str | None = Field(description="Why the order was rejected or cancelled.")
    last_error: str | None = Field(
        description="Why the checkout is stuck for now; it is tried again by itself."
    )
    payment_id: str | None
    delivery: DeliveryPublic | None = Field(
        default=None,
        description="Where and how it is delivered, and its price; null if placed without.",
    )
    checkout_steps: list[StepPublic]
    compensations_pending: list[str] = Field(
        description="What is still to be undone for a rejected or cancelled order."
    )
    saga: SagaPublic
    created_at: datetime
    updated_at: datetime
    version: int

    @classmethod
    def from_domain(cls, order: Order) -> OrderPublic:
        return cls(
            id=order.id,
            customer_id=order.customer_id,
            status=order.status,
            items=[LinePublic.from_domain(line) for line in order.lines],
            total=_amount(order.total),
            reason=order.reason,
            last_error=None if order.last_error is None else public_text(order.last_error),
            payment_id=order.payment_id,
            delivery=DeliveryPublic.from_order(order),
            checkout_steps=[StepPublic.from_domain(record) for record in order.steps],
            compensations_pending=[str(step) for step in order.compensations_due()],
            saga=SagaPublic.from_domain(order),
            created_at=order.created_at,
            updated_at=order.updated_at,
            version=order.version,
        )


class OrderPage(PageModel[OrderPublic]):
    """One page of a customer's orders, newest first."""

    next_before: str | None = Field(
        default=None,
        description="Pass as `before` for the orders after this page, unchanged by orders "
        "placed meanwhile; null on the last page.",
    )

    @classmethod
    def from_page(cls, page: Page[Order], *, next_before: str | None = None) -> OrderPage:
        listing = cls.of(page, OrderPublic.from_domain)
        listing.next_before = next_before
        return listing
