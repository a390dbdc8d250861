"""Repositories over the catalog's tables, implementing the service layer's ports."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from sqlalchemy import CursorResult, Integer, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from catalog.adapters.orm import categories, products
from catalog.domain.errors import ConcurrentUpdate, DuplicateSku
from catalog.domain.model import Category, Product
from catalog.service_layer.ports import CategorySummary, ProductSort
from contracts import Money

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy import ColumnElement, Executable, Row, Select
    from sqlalchemy.ext.asyncio import AsyncSession

_ORDER: dict[ProductSort, tuple[ColumnElement[Any], ...]] = {
    ProductSort.NAME: (func.lower(products.c.name), products.c.id),
    ProductSort.PRICE: (
        products.c.price_currency,
        products.c.price_amount,
        func.lower(products.c.name),
        products.c.id,
    ),
    ProductSort.PRICE_DESCENDING: (
        products.c.price_currency,
        products.c.price_amount.desc(),
        func.lower(products.c.name),
        products.c.id,
    ),
}


class SqlAlchemyProductRepository:
    """Products in the ``products`` table, with optimistic concurrency on ``version``."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        # The version each product had when this repository read or wrote it: a save only
        # applies if the row still has it, so concurrent revisions cannot overwrite each other.
        self._versions: dict[str, int] = {}
        self.written: list[Product] = []
        """The products added or revised in this transaction, whose events are to publish."""

    async def get(self, product_id: str) -> Product | None:
        row = (await self._session.execute(product_by_id(product_id))).one_or_none()
        return None if row is None else self._track(row)

    async def get_by_sku(self, sku: str) -> Product | None:
        row = (
            await self._session.execute(select(products).where(products.c.sku == sku))
        ).one_or_none()
        return None if row is None else self._track(row)

    async def add(self, product: Product) -> None:
        try:
            await self._session.execute(
                insert(products).values(
                    id=product.id, sku=product.sku, version=product.version, **_fields(product)
                )
            )
        except IntegrityError as error:
            # The id derives from the SKU, so a clash on either unique key is another writer
            # having added the same SKU a moment ago; other violations are not ours to rename.
            if not _violates_product_identity(error):
                raise
            raise DuplicateSku(product.sku) from error
        self._versions[product.id] = product.version
        self._written(product)

    async def save(self, product: Product) -> None:
        stored_version = self._versions[product.id]
        if product.version == stored_version:
            return
        result = await self._session.execute(
            update(products)
            .where(products.c.id == product.id, products.c.version == stored_version)
            .values(version=product.version, **_fields(product))
        )
        if not isinstance(result, CursorResult) or result.rowcount != 1:
            raise ConcurrentUpdate(product.id)
        self._versions[product.id] = product.version
        self._written(product)

    async def search(
        self,
        *,
        category: str | None,
        text: str | None,
        sort: ProductSort,
        offset: int,
        limit: int,
    ) -> tuple[list[Product], int]:
        count, page = search_statements(
            category=category, text=text, sort=sort, offset=offset, limit=limit
        )
        total = await self._session.scalar(count)
        rows = await self._session.execute(page)
        return [self._track(row) for row in rows], total or 0

    def _written(self, product: Product) -> None:
        if all(written is not product for written in self.written):
            self.written.append(product)

    def _track(self, row: Row[Any]) -> Product:
        product = product_from(row)
        self._versions[product.id] = product.version
        return product


class SqlAlchemyCategoryRepository:
    """Categories in the ``categories`` table, counted against ``products``."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, slug: str) -> Category | None:
        row = (
            await self._session.execute(select(categories).where(categories.c.slug == slug))
        ).one_or_none()
        return None if row is None else Category(slug=row.slug, name=row.name)

    async def summaries(self) -> list[CategorySummary]:
        return category_summaries_from(await self._session.execute(CATEGORY_SUMMARIES))


# The statements are shared with the read path (catalog.adapters.reading), which runs them
# without a session; built once where they take no parameters.


# Built once with a bound parameter: building the statement per call cost as much as
# running it (SQLAlchemy caches the compiled form either way).
_PRODUCT_BY_ID = select(products).where(products.c.id == bindparam("product_id"))


def product_by_id(product_id: str) -> Executable:
    return _PRODUCT_BY_ID.params(product_id=product_id)


def search_statements(
    *, category: str | None, text: str | None, sort: ProductSort, offset: int, limit: int
) -> tuple[Executable, Executable]:
    """How many products match, and the slice of them asked for."""
    if text is None:
        # Browsing (no search text) is most listings: its statements are built once.
        count, page = _browsing_statements(by_category=category is not None, sort=sort)
        return count.params(category=category), page.params(
            category=category, offset=offset, limit=limit
        )
    conditions = [
        # icontains renders ILIKE on PostgreSQL and lower() LIKE lower() on SQLite;
        # autoescape makes %, _ and the escape character in the text match literally.
        or_(
            products.c.name.icontains(text, autoescape=True),
            products.c.description.icontains(text, autoescape=True),
        )
    ]
    if category is not None:
        conditions.append(products.c.category == category)
    count = select(func.count()).select_from(products).where(*conditions)
    page = select(products).where(*conditions).order_by(*_ORDER[sort]).offset(offset).limit(limit)
    return count, page


@functools.cache
def _browsing_statements(
    *, by_category: bool, sort: ProductSort
) -> tuple[Select[Any], Select[Any]]:
    conditions = [products.c.category == bindparam("category")] if by_category else []
    count = select(func.count()).select_from(products).where(*conditions)
    page = (
        select(products)
        .where(*conditions)
        .order_by(*_ORDER[sort])
        .offset(bindparam("offset", type_=Integer))
        .limit(bindparam("limit", type_=Integer))
    )
    return count, page


CATEGORY_SUMMARIES = (
    select(categories.c.slug, categories.c.name, func.count(products.c.id).label("product_count"))
    .select_from(categories.outerjoin(products, products.c.category == categories.c.slug))
    .group_by(categories.c.slug, categories.c.name)
    .order_by(categories.c.name)
)


def product_from(row: Row[Any]) -> Product:
    return Product(
        id=row.id,
        sku=row.sku,
        name=row.name,
        description=row.description,
        category=row.category,
        price=Money(row.price_amount, row.price_currency),
        version=row.version,
    )


def category_summaries_from(rows: Iterable[Row[Any]]) -> list[CategorySummary]:
    return [
        CategorySummary(slug=row.slug, name=row.name, product_count=row.product_count)
        for row in rows
    ]


def _fields(product: Product) -> dict[str, Any]:
    return {
        "name": product.name,
        "description": product.description,
        "category": product.category,
        "price_amount": product.price.amount,
        "price_currency": str(product.price.currency),
    }


def _violates_product_identity(error: IntegrityError) -> bool:
    # SQLite names the column ("UNIQUE constraint failed: products.sku"); PostgreSQL names
    # the constraint ("uq_products_sku", or "pk_products" for the id).
    message = str(error.orig).lower()
    keys = ("products.sku", "products.id", "uq_products_sku", "pk_products")
    return any(key in message for key in keys)
