"""Repositories over the catalog's tables, implementing the service layer's ports."""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import (
    CursorResult,
    Integer,
    bindparam,
    column,
    func,
    insert,
    literal_column,
    select,
    table,
    update,
)
from sqlalchemy.exc import IntegrityError

from catalog.adapters.orm import categories, products
from catalog.domain.errors import ConcurrentUpdate, DuplicateSku
from catalog.domain.model import Category, Product
from catalog.service_layer.ports import CategorySummary, ProductSearch, ProductSort
from contracts import Money

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy import ColumnElement, Executable, Row, Select
    from sqlalchemy.ext.asyncio import AsyncSession

_ORDER: dict[ProductSort, tuple[ColumnElement[Any], ...]] = {
    ProductSort.NAME: (func.lower(products.c.name), products.c.id),
    # Without search text there is nothing to rank by: by name.
    ProductSort.RELEVANCE: (func.lower(products.c.name), products.c.id),
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

    async def search(self, criteria: ProductSearch) -> tuple[list[Product], int]:
        count, page = search_statements(criteria, dialect=self._session.get_bind().dialect.name)
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


# At most this many words of a search are looked up; the rest are ignored.
MAX_SEARCH_WORDS: Final = 8
# Each word is matched as a prefix ("lant" finds lanterns) of the stemmed words indexed.
# Letters and digits, as both engines' tokenizers split text ("low_cost" is two words).
_WORD = re.compile(r"[^\W_]+")
# SQLite FTS5's bm25 weights of the indexed columns: name, category, description.
_BM25 = "bm25(products_fts, 10.0, 4.0, 1.0)"
# The FTS5 index (migration 0003): not in the ORM's metadata, which describes only what
# every backend has.
_FTS = table("products_fts", column("rowid"))


def search_words(text: str) -> list[str]:
    """The words of a search, as the engines are asked for them: no operators, no quotes."""
    return _WORD.findall(text.lower())[:MAX_SEARCH_WORDS]


def search_statements(criteria: ProductSearch, *, dialect: str) -> tuple[Executable, Executable]:
    """How many products match, and the slice of them asked for.

    Text is looked up in the backend's full-text index (``dialect`` "sqlite": FTS5;
    otherwise PostgreSQL's ``tsvector``): every word must match, stemmed, as a prefix, and
    ``relevance`` ranks a match in the name above one in the category, above the
    description.
    """
    category, text, sort = criteria.category, criteria.text, criteria.sort
    if text is None and criteria.min_price is None and criteria.max_price is None:
        # Browsing (no search text) is most listings: its statements are built once.
        count, page = _browsing_statements(by_category=category is not None, sort=sort)
        return count.params(category=category), page.params(
            category=category, offset=criteria.offset, limit=criteria.limit
        )
    conditions: list[ColumnElement[bool]] = []
    if category is not None:
        conditions.append(products.c.category == category)
    if criteria.min_price is not None:
        conditions.append(products.c.price_amount >= criteria.min_price)
    if criteria.max_price is not None:
        conditions.append(products.c.price_amount <= criteria.max_price)
    source: Any = products
    rank: ColumnElement[Any] | None = None
    if text is not None:
        words = search_words(text)
        if not words:
            # Nothing searchable (only punctuation): nothing matches.
            conditions.append(literal_column("1") == literal_column("0"))
        elif dialect == "sqlite":
            fts: ColumnElement[Any] = literal_column("products_fts")
            source = products.join(_FTS, _FTS.c.rowid == literal_column("products.rowid"))
            conditions.append(fts.op("MATCH")(" ".join(f'"{word}"*' for word in words)))
            rank = literal_column(_BM25)
        else:
            query = func.to_tsquery(
                literal_column("'english'::regconfig"),
                " & ".join(f"{word}:*" for word in words),
            )
            vector: ColumnElement[Any] = literal_column("products.search_vector")
            conditions.append(vector.op("@@")(query))
            # ts_rank is "higher is better"; weights D, C, B, A (description .. name).
            rank = -func.ts_rank(literal_column("'{0.1, 0.3, 0.5, 1.0}'::float4[]"), vector, query)
    order = _ORDER[sort]
    if sort is ProductSort.RELEVANCE and rank is not None:
        order = (rank, *order)
    count = select(func.count()).select_from(source).where(*conditions)
    page = (
        select(products)
        .select_from(source)
        .where(*conditions)
        .order_by(*order)
        .offset(criteria.offset)
        .limit(criteria.limit)
    )
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
