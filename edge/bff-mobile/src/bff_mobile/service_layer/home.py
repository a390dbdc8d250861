"""The home screen: featured products, categories, the cart count and the latest order.

Its parts are fetched at once, each within its own time limit. A part whose source fails
or is too slow is left empty (or null) and named in ``degraded``: the screen still opens,
and the app can say what is missing instead of showing an error.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, TypeVar

from bff_mobile.domain.featured import pick_featured
from chassis import get_logger
from chassis.unit_of_work import StorageUnavailableError
from chassis.upstream import UpstreamFailure

if TYPE_CHECKING:
    from collections.abc import Awaitable
    from datetime import date

    from bff_mobile.domain.model import Category, OrderSummary, ProductCard
    from bff_mobile.service_layer.ports import Catalog, Orders, UnitOfWork

T = TypeVar("T")

# The featured products are picked from the catalog's first products, by name.
CANDIDATES = 100

_log = get_logger("bff_mobile.home")


class Part(StrEnum):
    """A part of the home screen, as ``degraded`` names it."""

    FEATURED = "featured"
    CATEGORIES = "categories"
    CART_COUNT = "cart_count"
    LATEST_ORDER = "latest_order"


@dataclass(frozen=True, slots=True)
class HomeScreen:
    featured: list[ProductCard]
    categories: list[Category]
    cart_count: int | None
    latest_order: OrderSummary | None
    degraded: list[Part]
    """The parts left empty because their source failed or was too slow, in screen order."""


@dataclass(frozen=True, slots=True)
class Sources:
    """Where the home screen's parts come from."""

    catalog: Catalog
    orders: Orders
    uow: UnitOfWork


async def home_screen(
    sources: Sources,
    customer_id: str,
    token: str,
    *,
    today: date,
    featured_count: int,
    part_timeout: float,
) -> HomeScreen:
    """The customer's home screen; never fails for want of one of its parts.

    A token that orders refuses (revoked since this process checked it) is no outage: the
    TokenRefused it raises is the caller's answer.
    """

    async def featured() -> list[ProductCard]:
        candidates = await sources.catalog.products(limit=CANDIDATES)
        return pick_featured(candidates, day=today.toordinal(), count=featured_count)

    async def cart_count() -> int:
        async with sources.uow as uow:
            return (await uow.carts.get(customer_id)).count

    async def latest_order() -> OrderSummary | None:
        page = await sources.orders.page(token, limit=1, before=None)
        return page.items[0] if page.items else None

    degraded: set[Part] = set()

    async def part(name: Part, fetch: Awaitable[T], empty: T) -> T:
        try:
            async with asyncio.timeout(part_timeout):
                return await fetch
        except (UpstreamFailure, StorageUnavailableError, TimeoutError) as error:
            _log.warning("home part degraded", part=str(name), error=type(error).__name__)
            degraded.add(name)
            return empty

    products, categories, count, latest = await asyncio.gather(
        part(Part.FEATURED, featured(), []),
        part(Part.CATEGORIES, sources.catalog.categories(), []),
        part(Part.CART_COUNT, cart_count(), None),
        part(Part.LATEST_ORDER, latest_order(), None),
    )
    return HomeScreen(
        featured=products,
        categories=categories,
        cart_count=count,
        latest_order=latest,
        degraded=[name for name in Part if name in degraded],
    )
