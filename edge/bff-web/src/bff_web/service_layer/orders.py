"""The customer's orders: checkout from the cart, one order, the history; all with their token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from bff_web.domain.errors import CheckoutRefused, SignInRequired
from bff_web.domain.session import new_secret
from bff_web.service_layer import accounts

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from datetime import datetime, timedelta

    from bff_web.domain.session import Session
    from bff_web.domain.shop import Order, OrderPage
    from bff_web.service_layer.ports import Identity, Orders, SessionStore

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


async def checkout(customer: Customer, orders: Orders, *, card_token: str) -> Order:
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
                token, session.cart.lines, card_token=card_token, key=session.checkout_key
            )
        )
    except CheckoutRefused:
        # Refused as sent: the next try is a new request, which must not reuse this key.
        session.checkout_key = new_secret()
        await customer.store.save(session)
        raise
    session.order_placed()
    await customer.store.save(session)
    return order


async def order(customer: Customer, orders: Orders, order_id: str) -> Order:
    """Raises OrderNotFound, SignInRequired or UpstreamFailure."""
    return await customer.call(lambda token: orders.order(token, order_id))


async def history(customer: Customer, orders: Orders, *, page: int, page_size: int) -> OrderPage:
    """Raises SignInRequired or UpstreamFailure."""
    return await customer.call(lambda token: orders.orders(token, page=page, page_size=page_size))
