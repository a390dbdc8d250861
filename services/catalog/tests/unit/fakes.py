"""Hand-written fakes of the ports, for the tests beside this file (imported, not fixtures)."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Self

from catalog.adapters.repository import search_words
from catalog.domain.errors import DuplicateSku
from catalog.domain.model import Category, Product
from catalog.service_layer.ports import CategorySummary, ProductSort

if TYPE_CHECKING:
    from types import TracebackType

    from catalog.service_layer.ports import ProductSearch


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

    async def search(self, criteria: ProductSearch) -> tuple[list[Product], int]:
        words = search_words(criteria.text) if criteria.text is not None else None

        def matches(p: Product) -> bool:
            if words is None:
                return True
            text = f"{p.name}\n{p.category}\n{p.description}".lower()
            return bool(words) and all(word in text for word in words)

        found = [
            p
            for p in self._products.values()
            if (criteria.category is None or p.category == criteria.category)
            and (criteria.min_price is None or p.price.amount >= criteria.min_price)
            and (criteria.max_price is None or p.price.amount <= criteria.max_price)
            and matches(p)
        ]
        found.sort(key=lambda p: (p.name.lower(), p.id))
        if criteria.sort is ProductSort.PRICE:
            found.sort(key=lambda p: p.price.amount)
        elif criteria.sort is ProductSort.PRICE_DESCENDING:
            found.sort(key=lambda p: -p.price.amount)
        elif criteria.sort is ProductSort.RELEVANCE and words:
            # The engines' ranking, roughly: more words in the name first.
            found.sort(key=lambda p: -sum(word in p.name.lower() for word in words))
        window = found[criteria.offset : criteria.offset + criteria.limit]
        return copy.deepcopy(window), len(found)


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
