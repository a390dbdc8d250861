"""Read-only questions about the catalog."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from catalog.domain.errors import ProductNotFound
from catalog.service_layer.ports import ProductSearch, ProductSort
from chassis.pagination import Page

if TYPE_CHECKING:
    from catalog.domain.model import Product
    from catalog.service_layer.ports import CategorySummary, UnitOfWork

DEFAULT_PAGE_SIZE: Final = 20
MAX_PAGE_SIZE: Final = 100
MAX_PAGE: Final = 10_000
MAX_SEARCH_LENGTH: Final = 100


async def list_products(
    uow: UnitOfWork,
    *,
    category: str | None = None,
    q: str | None = None,
    page: int = 1,
    page_size: int = DEFAULT_PAGE_SIZE,
    sort: ProductSort | None = None,
    min_price: int | None = None,
    max_price: int | None = None,
) -> Page[Product]:
    """Products, optionally of one category, within a price range, and/or matching ``q``.

    ``q`` is full-text search (see ProductSearch); the default order is by relevance with
    ``q`` and by name without. ``page`` counts from 1. Page, page size and ``q`` are held
    within MAX_PAGE, MAX_PAGE_SIZE and MAX_SEARCH_LENGTH so no caller can ask for unbounded
    work.
    """
    page = min(max(page, 1), MAX_PAGE)
    page_size = min(max(page_size, 1), MAX_PAGE_SIZE)
    text = (q or "").strip()[:MAX_SEARCH_LENGTH] or None
    async with uow:
        items, total = await uow.products.search(
            ProductSearch(
                category=category,
                text=text,
                min_price=min_price,
                max_price=max_price,
                sort=sort or (ProductSort.RELEVANCE if text else ProductSort.NAME),
                offset=(page - 1) * page_size,
                limit=page_size,
            )
        )
    return Page(items=items, page=page, page_size=page_size, total=total)


async def get_product(uow: UnitOfWork, product_id: str) -> Product:
    """The product with this id; raises ProductNotFound."""
    async with uow:
        product = await uow.products.get(product_id)
    if product is None:
        raise ProductNotFound(product_id)
    return product


async def list_categories(uow: UnitOfWork) -> list[CategorySummary]:
    """Every category with how many products it holds, ordered by name."""
    async with uow:
        return await uow.categories.summaries()
