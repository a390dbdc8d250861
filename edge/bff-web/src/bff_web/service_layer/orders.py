"""The customer's orders: checkout from the cart, one order, the history; all with their token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bff_web.domain.errors import CheckoutRefused
from bff_web.service_layer import accounts

if TYPE_CHECKING:
    from datetime import datetime, timedelta

    from bff_web.domain.session import Session
    from bff_web.domain.shop import Order, OrderPage
    from bff_web.service_layer.ports import Identity, Orders, SessionStore


@dataclass(frozen=True, slots=True)
class Customer:
    """What calling orders as the session's customer takes: their token, kept fresh."""

    session: Session
    identity: Identity
    store: SessionStore
    now: datetime
    refresh_margin: timedelta

    async def access_token(self) -> str:
        """Raises SignInRequired."""
        return await accounts.access_token(
            self.session,
            identity=self.identity,
            store=self.store,
            now=self.now,
            margin=self.refresh_margin,
        )


async def checkout(customer: Customer, orders: Orders, *, card_token: str) -> Order:
    """Place the cart as an order, then empty the cart.

    The session's checkout key goes with it as the Idempotency-Key: a checkout sent twice
    (a double click, a retry after a lost answer) places one order. Raises CheckoutRefused,
    SignInRequired, or UpstreamFailure (then the cart is kept, and so is the key).
    """
    session = customer.session
    if session.cart.is_empty:
        raise CheckoutRefused("Your cart is empty.")
    token = await customer.access_token()
    order = await orders.place(
        token, session.cart.lines, card_token=card_token, key=session.checkout_key
    )
    session.order_placed()
    await customer.store.save(session)
    return order


async def order(customer: Customer, orders: Orders, order_id: str) -> Order:
    """Raises OrderNotFound, SignInRequired or UpstreamFailure."""
    return await orders.order(await customer.access_token(), order_id)


async def history(customer: Customer, orders: Orders, *, page: int, page_size: int) -> OrderPage:
    """Raises SignInRequired or UpstreamFailure."""
    return await orders.orders(await customer.access_token(), page=page, page_size=page_size)
