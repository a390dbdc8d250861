"""The JSON order-history's HTTP API answers with."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from chassis.pagination import Page, PageModel
from chassis.schemas import MoneyModel
from contracts.events import Delivery
from order_history.domain.model import Line, OrderStatus, Payment, PaymentState, Stock, StockState
from order_history.service_layer.queries import PastOrder
from order_history.service_layer.rebuilding import RebuildState, RebuildStatus


class LinePublic(BaseModel):
    """A product and how many of it; name and price as the order was confirmed with."""

    product_id: str
    sku: str | None = Field(description="None while neither the checkout nor the catalog told.")
    name: str | None = Field(
        description="As confirmed; until then the catalog's name; None if neither told yet.",
        examples=["Taliouine saffron threads, 2 g"],
    )
    quantity: int
    unit_price: MoneyModel | None = Field(description="As priced at the checkout.")

    @classmethod
    def from_domain(cls, line: Line) -> LinePublic:
        return cls(
            product_id=line.product_id,
            sku=line.sku,
            name=line.name,
            quantity=line.quantity,
            unit_price=None if line.unit_price is None else MoneyModel.from_money(line.unit_price),
        )


class PaymentPublic(BaseModel):
    state: PaymentState
    amount: MoneyModel
    reason: str | None = Field(description="Why it was declined.", examples=["card_declined"])

    @classmethod
    def from_domain(cls, payment: Payment) -> PaymentPublic:
        return cls(
            state=payment.state,
            amount=MoneyModel.from_money(payment.amount),
            reason=payment.reason,
        )


class StockLinePublic(BaseModel):
    sku: str
    quantity: int


class StockPublic(BaseModel):
    state: StockState
    lines: list[StockLinePublic]

    @classmethod
    def from_domain(cls, stock: Stock) -> StockPublic:
        return cls(
            state=stock.state,
            lines=[StockLinePublic(sku=line.sku, quantity=line.quantity) for line in stock.lines],
        )


class DeliveryPublic(BaseModel):
    """Where and how the order is delivered, as the customer placed it."""

    name: str
    address: str
    postcode: str
    city: str
    country: str = Field(description="ISO 3166 code.", examples=["MA"])
    option: str = Field(description="standard or express.", examples=["standard"])

    @classmethod
    def from_domain(cls, delivery: Delivery) -> DeliveryPublic:
        return cls.model_validate(delivery, from_attributes=True)


class PastOrderPublic(BaseModel):
    """One of the customer's orders, as orders, billing, inventory and catalog told of it."""

    order_id: str
    status: OrderStatus
    placed_at: datetime
    updated_at: datetime
    items: list[LinePublic]
    total: MoneyModel | None = Field(description="Once the order was priced.")
    reason: str | None = Field(description="Why the order was rejected.")
    payment: PaymentPublic | None = Field(description="None until billing told of a payment.")
    stock: StockPublic | None = Field(description="None until inventory told of a reservation.")
    delivery: DeliveryPublic | None = Field(
        default=None, description="Where and how it is delivered; None if placed without one."
    )

    @classmethod
    def from_domain(cls, past: PastOrder) -> PastOrderPublic:
        view = past.view
        if view.status is None or view.placed_at is None or view.updated_at is None:
            raise ValueError(f"order {view.order_id} is not listed yet")
        return cls(
            order_id=view.order_id,
            status=view.status,
            placed_at=view.placed_at,
            updated_at=view.updated_at,
            items=[LinePublic.from_domain(line) for line in past.lines],
            total=None if view.total is None else MoneyModel.from_money(view.total),
            reason=view.reason,
            payment=None if view.payment is None else PaymentPublic.from_domain(view.payment),
            stock=None if view.stock is None else StockPublic.from_domain(view.stock),
            delivery=None if view.delivery is None else DeliveryPublic.from_domain(view.delivery),
        )


class PastOrderPage(PageModel[PastOrderPublic]):
    """One page of a customer's orders, latest placed first."""

    @classmethod
    def from_page(cls, page: Page[PastOrder]) -> PastOrderPage:
        return cls.of(page, PastOrderPublic.from_domain)


class RebuildPublic(BaseModel):
    """Where the latest rebuild stands: ``done`` of ``total`` archived events read so far."""

    state: RebuildState
    started_at: datetime
    done: int
    total: int
    seconds: float
    orders: int | None = None
    products: int | None = None
    error: str | None = None

    @classmethod
    def from_status(cls, status: RebuildStatus) -> RebuildPublic:
        result = status.result
        return cls(
            state=status.state,
            started_at=status.started_at,
            done=status.done,
            total=status.total,
            seconds=round(status.seconds, 3),
            orders=None if result is None else result.orders,
            products=None if result is None else result.products,
            error=status.error,
        )
