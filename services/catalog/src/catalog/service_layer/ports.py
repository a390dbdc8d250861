"""What the service layer needs from storage, stated as protocols the adapters implement."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from chassis import unit_of_work

if TYPE_CHECKING:
    from catalog.domain.model import Category, Product


class ProductSort(StrEnum):
    """Orders a product listing can come in; ties are broken by name, then id.

    ``relevance`` ranks by the search text's match (name above category above description);
    without text it is by name.
    """

    RELEVANCE = "relevance"
    NAME = "name"
    PRICE = "price"
    PRICE_DESCENDING = "-price"


@dataclass(frozen=True, slots=True)
class ProductSearch:
    """Which products a listing shows, in which order, and which slice of them.

    ``text``: words every match has, stemmed, in its name, category or description.
    ``min_price``/``max_price``: bounds on the price in minor units, both inclusive.
    """

    category: str | None = None
    text: str | None = None
    min_price: int | None = None
    max_price: int | None = None
    sort: ProductSort = ProductSort.NAME
    offset: int = 0
    limit: int = 20


@dataclass(frozen=True, slots=True)
class CategorySummary:
    slug: str
    name: str
    product_count: int


class ProductRepository(Protocol):
    async def get(self, product_id: str) -> Product | None:
        """The product with this id, or None."""

    async def get_by_sku(self, sku: str) -> Product | None:
        """The product with this SKU, or None."""

    async def add(self, product: Product) -> None:
        """Store a new product; raises DuplicateSku if its SKU is taken."""

    async def save(self, product: Product) -> None:
        """Store a revised product; raises StaleProduct if it changed since it was loaded."""

    async def search(self, criteria: ProductSearch) -> tuple[list[Product], int]:
        """One slice of the matching products and how many match in all."""


class CategoryRepository(Protocol):
    async def get(self, slug: str) -> Category | None:
        """The category with this slug, or None."""

    async def summaries(self) -> list[CategorySummary]:
        """Every category with its product count, ordered by name."""


class UnitOfWork(unit_of_work.UnitOfWork, Protocol):
    """One transaction over the catalog; leaving it without ``commit`` rolls back.

    A unit of work may be entered again after it is left, for another transaction.
    """

    @property
    def products(self) -> ProductRepository: ...

    @property
    def categories(self) -> CategoryRepository: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]
