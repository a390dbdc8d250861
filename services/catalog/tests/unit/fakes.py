"""Hand-written fakes of the ports, for the tests beside this file (imported, not fixtures)."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Self

from catalog.domain.errors import DuplicateSku
from catalog.domain.model import Category, Product
from catalog.service_layer.ports import CategorySummary, ProductSort

if TYPE_CHECKING:
    from types import TracebackType


CATEGORIES = (
    Category(slug="spices", name="Spices"),
    Category(slug="tea-coffee", name="Tea & coffee"),
    Category(slug="ceramics", name="Ceramics"),
)


class FakeProductRepository:
    """Products in a dict, copied in and out so only ``add`` and ``save`` change them."""

    def __init__(self, products: dict[str, Product]) -> None:
        self._products = products

    async def get(self, product_id: str) -> Product | None:
        product = self._products.get(product_id)
        return None if product is None else copy.deepcopy(product)

    async def get_by_sku(self, sku: str) -> Product | None:
        found = [p for p in self._products.values() if p.sku == sku]
        return copy.deepcopy(found[0]) if found else None

    async def add(self, product: Product) -> None:
        if product.id in self._products:
            raise DuplicateSku(product.sku)
        self._products[product.id] = copy.deepcopy(product)

    async def save(self, product: Product) -> None:
        self._products[product.id] = copy.deepcopy(product)

    async def search(
        self,
        *,
        category: str | None,
        text: str | None,
        sort: ProductSort,
        offset: int,
        limit: int,
    ) -> tuple[list[Product], int]:
        found = [
            p
            for p in self._products.values()
            if (category is None or p.category == category)
            and (text is None or text.lower() in f"{p.name}\n{p.description}".lower())
        ]
        found.sort(key=lambda p: (p.name.lower(), p.id))
        if sort is ProductSort.PRICE:
            found.sort(key=lambda p: p.price.amount)
        elif sort is ProductSort.PRICE_DESCENDING:
            found.sort(key=lambda p: -p.price.amount)
        return copy.deepcopy(found[offset : offset + limit]), len(found)


class FakeCategoryRepository:
    def __init__(self, categories: dict[str, Category], products: dict[str, Product]) -> None:
        self._categories = categories
        self._products = products

    async def get(self, slug: str) -> Category | None:
        return self._categories.get(slug)

    async def summaries(self) -> list[CategorySummary]:
        return [
            CategorySummary(
                slug=category.slug,
                name=category.name,
                product_count=sum(p.category == category.slug for p in self._products.values()),
            )
            for category in sorted(self._categories.values(), key=lambda c: c.name)
        ]


class FakeUnitOfWork:
    """Each ``async with`` works on a copy of the catalog that only ``commit`` keeps."""

    products: FakeProductRepository
    categories: FakeCategoryRepository

    def __init__(self, categories: tuple[Category, ...] = CATEGORIES) -> None:
        self._categories = {category.slug: category for category in categories}
        self._committed: dict[str, Product] = {}

    async def __aenter__(self) -> Self:
        self._working = copy.deepcopy(self._committed)
        self.products = FakeProductRepository(self._working)
        self.categories = FakeCategoryRepository(self._categories, self._working)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        del self._working

    async def commit(self) -> None:
        self._committed = copy.deepcopy(self._working)
