"""The customer's orders, a page at a time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from bff_mobile.domain.model import OrdersPage
    from bff_mobile.service_layer.ports import Orders

DEFAULT_LIMIT: Final = 20
MAX_LIMIT: Final = 50


async def orders_page(orders: Orders, token: str, *, limit: int, before: str | None) -> OrdersPage:
    """Up to ``limit`` (held within 1..MAX_LIMIT) of the token subject's orders, newest
    first, after orders' cursor ``before``."""
    return await orders.page(token, limit=min(max(limit, 1), MAX_LIMIT), before=before)
