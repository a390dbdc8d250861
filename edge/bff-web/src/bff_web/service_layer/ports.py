"""What the storefront needs from the services behind it and from its session store.

Adapters raise ``chassis.upstream.UpstreamFailure`` when a service gives no usable answer;
the domain's errors when the answer is a clear "no" (an unknown product, a refused code).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime

    from bff_web.domain.cart import CartLine
    from bff_web.domain.delivery import Delivery
    from bff_web.domain.session import CustomerTokens, Session
    from bff_web.domain.shop import (
        Category,
        Money,
        Order,
        OrderPage,
        Product,
        ProductPage,
        StockLevel,
    )


class Catalog(Protocol):
    async def categories(self) -> list[Category]: ...

    async def products(
        self,
        *,
        category: str | None,
        query: str | None,
        page: int,
        page_size: int,
        sort: str | None = None,
        min_price: int | None = None,
        max_price: int | None = None,
    ) -> ProductPage:
        """``sort``: relevance, name, price or -price; prices in minor units."""
        ...

    async def product(self, product_id: str) -> Product:
        """Raises ProductNotFound."""
        ...


class Stock(Protocol):
    async def level(self, sku: str) -> StockLevel | None:
        """The stock of a SKU; None if inventory does not stock it."""
        ...


class Orders(Protocol):
    """Orders as the signed-in customer: every call carries their access token."""

    async def place(
        self,
        access_token: str,
        lines: Sequence[CartLine],
        *,
        card_token: str,
        key: str,
        delivery: Delivery | None = None,
    ) -> Order:
        """Raises CheckoutRefused."""
        ...

    async def order(self, access_token: str, order_id: str) -> Order:
        """Raises OrderNotFound."""
        ...

    async def delivery_prices(self, access_token: str) -> dict[str, Money]:
        """What each delivery option costs now, by option."""
        ...

    async def orders(self, access_token: str, *, page: int, page_size: int) -> OrderPage: ...


@dataclass(frozen=True, slots=True)
class Authorization:
    """What the callback brings back from identity's sign-in page."""

    code: str
    code_verifier: str
    redirect_uri: str


class Identity(Protocol):
    """Identity as the storefront's confidential client (HTTP Basic with its secret)."""

    async def exchange(self, authorization: Authorization, now: datetime) -> CustomerTokens:
        """Raises SignInFailed if identity refuses the code."""
        ...

    async def refresh(self, refresh_token: str, now: datetime) -> CustomerTokens:
        """Raises SignInRequired if identity refuses the refresh token."""
        ...

    async def revoke(self, refresh_token: str) -> None: ...

    async def register(self, email: str, password: str) -> None:
        """Raises SignUpRefused with identity's reason."""
        ...

    async def authorize(self, parameters: Mapping[str, str], email: str, password: str) -> str:
        """Sign in at identity's authorization endpoint with the customer's credentials, as
        its form does; where identity sends the browser next (the redirect URI with a code).

        Raises SignInFailed if identity refuses them."""
        ...


class SessionStore(Protocol):
    async def load(self, session_id: str, now: datetime) -> Session | None:
        """The live session with this id, or None (unknown or expired)."""
        ...

    async def save(self, session: Session) -> None: ...

    async def delete(self, session_id: str) -> None: ...
