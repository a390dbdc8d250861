"""A browser's session: all the browser holds is its id, in an HttpOnly cookie.

The tokens, the cart and the pending sign-in stay here, on the server side.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from bff_web.domain.cart import Cart


def new_secret() -> str:
    """An unguessable token: 256 bits, URL-safe."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class CustomerTokens:
    """The customer's tokens from identity; they never leave the server."""

    access_token: str
    refresh_token: str | None
    expires_at: datetime

    def need_refresh(self, now: datetime, margin: timedelta) -> bool:
        """Whether the access token is too close to expiry to send on."""
        return now >= self.expires_at - margin


@dataclass(frozen=True, slots=True)
class PendingSignIn:
    """A sign-in on its way through identity: what the callback must match and prove."""

    state: str
    code_verifier: str
    return_to: str


@dataclass(frozen=True, slots=True)
class HeldCart:
    """The cart an order was placed from, kept until the order is settled: a rejected order
    gives it back, so the shopper can try again or use another card."""

    order_id: str
    quantities: dict[str, int]


@dataclass(slots=True)
class Session:
    """One browser's session. ``id`` is the cookie's value; ``csrf_token`` is in every form."""

    id: str
    csrf_token: str
    expires_at: datetime
    cart: Cart = field(default_factory=Cart)
    tokens: CustomerTokens | None = None
    pending_sign_in: PendingSignIn | None = None
    # The Idempotency-Key of the next order: a repeated checkout places it once.
    checkout_key: str = field(default_factory=new_secret)
    # Notices shown once on the next page (``Signed out``, ``Added to cart``).
    flashes: list[str] = field(default_factory=list)
    # The cart of the last order placed, until that order is confirmed or rejected.
    held_cart: HeldCart | None = None

    @classmethod
    def start(cls, now: datetime, ttl: timedelta) -> Session:
        return cls(id=new_secret(), csrf_token=new_secret(), expires_at=now + ttl)

    @property
    def signed_in(self) -> bool:
        return self.tokens is not None

    @property
    def is_blank(self) -> bool:
        """Whether it holds nothing to keep: no cart, customer, sign-in under way or notice."""
        return (
            self.cart.is_empty
            and self.tokens is None
            and self.pending_sign_in is None
            and not self.flashes
        )

    def begin_sign_in(self, return_to: str) -> PendingSignIn:
        """Remember a new sign-in attempt (state and PKCE verifier), replacing any earlier one."""
        self.pending_sign_in = PendingSignIn(new_secret(), new_secret(), return_to)
        return self.pending_sign_in

    def signed_in_as(self, tokens: CustomerTokens, now: datetime, ttl: timedelta) -> Session:
        """The session after sign-in: a new id and CSRF token (no fixation), the same cart."""
        return replace(
            self,
            id=new_secret(),
            csrf_token=new_secret(),
            expires_at=now + ttl,
            tokens=tokens,
            pending_sign_in=None,
            flashes=[*self.flashes],
            cart=Cart(dict(self.cart.quantities)),
        )

    def order_placed(self, order_id: str) -> None:
        """Hold the cart for the order, empty it, and take a new key, so the next checkout
        is a new order."""
        self.held_cart = HeldCart(order_id, dict(self.cart.quantities))
        self.cart.clear()
        self.checkout_key = new_secret()

    def order_settled(self, order_id: str, *, rejected: bool) -> bool:
        """Forget the held cart of a settled order; a rejected one's goes back into the cart
        (added to whatever the shopper put there since). Whether the cart came back."""
        held = self.held_cart
        if held is None or held.order_id != order_id:
            return False
        self.held_cart = None
        if not rejected:
            return False
        for product_id, quantity in held.quantities.items():
            self.cart.set_quantity(
                product_id, max(quantity, self.cart.quantities.get(product_id, 0))
            )
        return True

    def flash(self, notice: str) -> None:
        self.flashes.append(notice)

    def take_flashes(self) -> list[str]:
        notices, self.flashes = self.flashes, []
        return notices
