"""What the service layer needs from the catalog, from orders and from its own storage.

The clients of other services raise ``chassis.upstream.UpstreamFailure`` when there is no
usable answer; a screen shows that part as degraded, a single-purpose call refuses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from chassis import unit_of_work

if TYPE_CHECKING:
    from bff_mobile.domain.cart import Cart, CartLine
    from bff_mobile.domain.model import Category, OrdersPage, ProductCard


class Catalog(Protocol):
    """The public catalog."""

    async def products(self, *, limit: int) -> list[ProductCard]:
        """Up to ``limit`` products, in the catalog's order (by name)."""

    async def categories(self) -> list[Category]:
        """Every category, with its product count."""

    async def product(self, product_id: str) -> ProductCard | None:
        """The product with this id, or None if the catalog has none."""


class Orders(Protocol):
    """The customer's orders, read with the customer's own access token."""

    async def page(self, token: str, *, limit: int, before: str | None) -> OrdersPage:
        """Up to ``limit`` of the token subject's orders, newest first, after orders' cursor
        ``before``; raises InvalidCursor if orders refuses the cursor."""


class CartRepository(Protocol):
    async def get(self, customer_id: str) -> Cart:
        """The customer's cart; empty if they never put anything in it."""

    async def put(self, customer_id: str, line: CartLine) -> None:
        """Store the line, in place of the product's line if there was one."""

    async def remove(self, customer_id: str, product_id: str) -> None:
        """Take the product's line out, if there is one."""


class UnitOfWork(unit_of_work.UnitOfWork, Protocol):
    """One transaction over bff-mobile's storage; leaving it without ``commit`` rolls back."""

    @property
    def carts(self) -> CartRepository: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]
