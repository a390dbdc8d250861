"""The customer's orders: checkout from the cart, one order, the history; all with their token."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from bff_web.domain.errors import CheckoutRefused, ProductNotFound, SignInRequired
from bff_web.domain.session import new_secret
from bff_web.domain.shop import REJECTED_STATUSES, explain_rejection
from bff_web.service_layer import accounts
from chassis.upstream import UpstreamFailure

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from datetime import datetime, timedelta

    from bff_web.domain.delivery import Delivery
    from bff_web.domain.session import Session
    from bff_web.domain.shop import Money, Order, OrderLine, OrderPage, Product
    from bff_web.service_layer.ports import Catalog, Identity, Orders, SessionStore

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Customer:
    """What calling orders as the session's customer takes: their token, kept fresh."""

    session: Session
    identity: Identity
    store: SessionStore
    refreshes: accounts.RefreshLocks
    now: datetime
    refresh_margin: timedelta

    async def access_token(self) -> str:
        """Raises SignInRequired."""
        return await accounts.access_token(
            self.session,
            identity=self.identity,
            store=self.store,
            refreshes=self.refreshes,
            now=self.now,
            margin=self.refresh_margin,
        )

    async def call(self, request: Callable[[str], Awaitable[T]]) -> T:
        """``request(access_token)``; if orders refuses the token (its grant was revoked
        elsewhere), the session forgets it, so signing in again starts afresh."""
        token = await self.access_token()
        try:
            return await request(token)
        except SignInRequired:
            self.session.tokens = None
            await self.store.save(self.session)
            raise


async def checkout(
    customer: Customer, orders: Orders, *, card_token: str, delivery: Delivery | None = None
) -> Order:
    """Place the cart as an order, then empty the cart.

    The session's checkout key goes with it as the Idempotency-Key: a checkout sent twice
    (a double click, a retry after a lost answer) places one order. Raises CheckoutRefused
    (the cart is kept, the key renewed), SignInRequired, or UpstreamFailure (the cart and the
    key are kept: the retry may find the order placed).
    """
    session = customer.session
    if session.cart.is_empty:
        raise CheckoutRefused("Your cart is empty.")
    try:
        order = await customer.call(
            lambda token: orders.place(
                token,
                session.cart.lines,
                card_token=card_token,
                key=session.checkout_key,
                delivery=delivery,
            )
        )
    except CheckoutRefused:
        # Refused as sent: the next try is a new request, which must not reuse this key.
        session.checkout_key = new_secret()
        await customer.store.save(session)
        raise
    session.order_placed(order.id)
    await customer.store.save(session)
    return order


async def delivery_prices(customer: Customer, orders: Orders) -> dict[str, Money]:
    """Orders' price of each delivery option now. Raises SignInRequired or UpstreamFailure."""
    return await customer.call(orders.delivery_prices)


async def order(customer: Customer, orders: Orders, order_id: str) -> Order:
    """Raises OrderNotFound, SignInRequired or UpstreamFailure."""
    return await customer.call(lambda token: orders.order(token, order_id))


@dataclass(frozen=True, slots=True)
class OrderView:
    """An order as its page shows it: every line named, a refusal explained in words, and
    whether this visit put the cart back (the order was rejected)."""

    order: Order
    names: dict[str, str]
    explanation: str | None
    cart_restored: bool

    def name_of(self, line: OrderLine) -> str:
        return line.name or self.names.get(line.product_id) or "A product no longer sold"


async def order_view(
    customer: Customer, orders: Orders, catalog: Catalog, order_id: str
) -> OrderView:
    """The order, its products' names from the catalog where orders has none yet (pending)
    or a refusal names SKUs; a settled order releases the cart held for it.

    Raises OrderNotFound, SignInRequired or UpstreamFailure (from orders only: a catalog
    that cannot answer leaves names out).
    """
    placed = await order(customer, orders, order_id)
    rejected = placed.status in REJECTED_STATUSES
    wanted = {line.product_id for line in placed.lines if rejected or line.name is None}
    products = await asyncio.gather(*(_product(catalog, pid) for pid in sorted(wanted)))
    found = [product for product in products if product is not None]
    names = {product.id: product.name for product in found}
    restored = False
    if placed.settled:
        restored = customer.session.order_settled(placed.id, rejected=rejected)
        if restored:
            await customer.store.save(customer.session)
    explanation = None
    if rejected:
        by_sku = {product.sku: product.name for product in found}
        explanation = explain_rejection(placed.reason, by_sku)
    return OrderView(placed, names, explanation, restored)


async def _product(catalog: Catalog, product_id: str) -> Product | None:
    try:
        return await catalog.product(product_id)
    except (ProductNotFound, UpstreamFailure):
        return None


async def history(customer: Customer, orders: Orders, *, page: int, page_size: int) -> OrderPage:
    """Raises SignInRequired or UpstreamFailure."""
    return await customer.call(lambda token: orders.orders(token, page=page, page_size=page_size))
