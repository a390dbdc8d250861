"""The JSON of the mobile API: short keys, only what a screen shows, money as integer minor
units with its currency beside it (``"price": 1490, "cur": "EUR"`` is 14.90 EUR).

The keys are part of the API's contract with apps already installed: add, never rename.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from bff_mobile.domain.cart import MAX_QUANTITY, Cart, CartLine
from bff_mobile.domain.model import Category, OrdersPage, OrderSummary, ProductCard
from bff_mobile.service_layer.home import HomeScreen, Part

MINOR_UNITS = "Integer minor units of `cur` (cents for EUR)."


class ProductOut(BaseModel):
    id: str
    name: str
    cat: str = Field(description="The category's slug.", examples=["spices"])
    price: int = Field(description=MINOR_UNITS, examples=[1490])
    cur: str = Field(description="ISO 4217 currency.", examples=["EUR"])

    @classmethod
    def of(cls, product: ProductCard) -> ProductOut:
        return cls(
            id=product.id,
            name=product.name,
            cat=product.category,
            price=product.price.amount,
            cur=str(product.price.currency),
        )


class CategoryOut(BaseModel):
    slug: str = Field(examples=["tea-coffee"])
    name: str = Field(examples=["Tea & coffee"])
    n: int = Field(description="How many products it has.")

    @classmethod
    def of(cls, category: Category) -> CategoryOut:
        return cls(slug=category.slug, name=category.name, n=category.product_count)


class OrderOut(BaseModel):
    id: str
    status: str = Field(description="PENDING, CONFIRMED, REJECTED or CANCELLED.")
    total: int | None = Field(description=MINOR_UNITS + " Null until the order is priced.")
    cur: str | None
    n: int = Field(description="How many items: the quantities summed.")
    at: datetime = Field(description="When it was placed.")

    @classmethod
    def of(cls, order: OrderSummary) -> OrderOut:
        return cls(
            id=order.id,
            status=order.status,
            total=None if order.total is None else order.total.amount,
            cur=None if order.total is None else str(order.total.currency),
            n=order.item_count,
            at=order.created_at,
        )


class HomeOut(BaseModel):
    """The home screen in one answer; a part whose source failed is empty and listed in
    ``degraded``, so the app can say what is missing."""

    featured: list[ProductOut] = Field(
        description="A few products, a different set each day, spread over the categories."
    )
    categories: list[CategoryOut]
    cart_count: int | None = Field(description="Items in the cart; null if degraded.")
    latest_order: OrderOut | None = Field(description="Null with no order yet, or if degraded.")
    degraded: list[Part] = Field(description="The parts left empty: their source failed.")

    @classmethod
    def of(cls, screen: HomeScreen) -> HomeOut:
        latest = screen.latest_order
        return cls(
            featured=[ProductOut.of(product) for product in screen.featured],
            categories=[CategoryOut.of(category) for category in screen.categories],
            cart_count=screen.cart_count,
            latest_order=None if latest is None else OrderOut.of(latest),
            degraded=screen.degraded,
        )


class OrdersOut(BaseModel):
    """Some of the caller's orders, newest first."""

    items: list[OrderOut]
    next: str | None = Field(
        description="Pass as `cursor` for the orders after these; null when there are no "
        "more. Orders placed meanwhile never shift a walk: each order comes once."
    )

    @classmethod
    def of(cls, page: OrdersPage, next_cursor: str | None) -> OrdersOut:
        return cls(items=[OrderOut.of(order) for order in page.items], next=next_cursor)


class CartLineOut(BaseModel):
    id: str = Field(description="The product's id.")
    name: str
    qty: int
    price: int = Field(description=MINOR_UNITS + " The unit price when it was put in the cart.")
    cur: str

    @classmethod
    def of(cls, line: CartLine) -> CartLineOut:
        return cls(
            id=line.product_id,
            name=line.name,
            qty=line.quantity,
            price=line.unit_price.amount,
            cur=str(line.unit_price.currency),
        )


class CartOut(BaseModel):
    """The caller's cart, oldest line first."""

    items: list[CartLineOut]
    count: int = Field(description="Items in the cart: the quantities summed.")

    @classmethod
    def of(cls, cart: Cart) -> CartOut:
        return cls(items=[CartLineOut.of(line) for line in cart.lines], count=cart.count)


class QuantityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    qty: StrictInt = Field(ge=1, le=MAX_QUANTITY, examples=[2])
