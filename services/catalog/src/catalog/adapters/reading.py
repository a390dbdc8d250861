"""The read path: a unit of work that only reads, each question answered in one database call.

Browsing is most of the catalog's traffic. A read needs no ORM session, no outbox and no
transaction held across awaits: each repository call runs its statements through
``chassis.Database.read`` (on SQLite, on the event loop with the stdlib driver; elsewhere
one pooled connection). What it returns is always the committed state of the shared
database, so a product another replica revised a moment ago is read as revised: nothing is
cached in the process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn, Self

from sqlalchemy import select

from catalog.adapters.orm import categories, products
from catalog.adapters.repository import (
    CATEGORY_SUMMARIES,
    category_summaries_from,
    product_by_id,
    product_from,
    search_statements,
)
from catalog.domain.model import Category, Product
from chassis.unit_of_work import StorageUnavailableError, storage_unavailable

if TYPE_CHECKING:
    from types import TracebackType

    from sqlalchemy import Connection

    from catalog.service_layer.ports import CategorySummary, ProductSearch
    from chassis import Database


class ReadOnlyStorageError(TypeError):
    """A write was attempted through the read path."""


class ProductReader:
    """The products, read; ``add`` and ``save`` belong to the SQLAlchemy unit of work."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def get(self, product_id: str) -> Product | None:
        def query(connection: Connection) -> Product | None:
            row = connection.execute(product_by_id(product_id)).one_or_none()
            return None if row is None else product_from(row)

        return await self._database.read(query)

    async def get_by_sku(self, sku: str) -> Product | None:
        def query(connection: Connection) -> Product | None:
            row = connection.execute(select(products).where(products.c.sku == sku)).one_or_none()
            return None if row is None else product_from(row)

        return await self._database.read(query)

    async def search(self, criteria: ProductSearch) -> tuple[list[Product], int]:
        def query(connection: Connection) -> tuple[list[Product], int]:
            count, page = search_statements(criteria, dialect=connection.dialect.name)
            # One connection, one snapshot-less pair of reads: the count and the page may
            # straddle a concurrent write, as two statements in autocommit always could.
            total = connection.scalar(count) or 0
            return [product_from(row) for row in connection.execute(page)], total

        return await self._database.read(query)

    async def add(self, product: Product) -> NoReturn:
        raise ReadOnlyStorageError(f"cannot add {product.id}: this unit of work only reads")

    async def save(self, product: Product) -> NoReturn:
        raise ReadOnlyStorageError(f"cannot save {product.id}: this unit of work only reads")


class CategoryReader:
    """The categories and their product counts, read."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def get(self, slug: str) -> Category | None:
        def query(connection: Connection) -> Category | None:
            row = connection.execute(
                select(categories).where(categories.c.slug == slug)
            ).one_or_none()
            return None if row is None else Category(slug=row.slug, name=row.name)

        return await self._database.read(query)

    async def summaries(self) -> list[CategorySummary]:
        def query(connection: Connection) -> list[CategorySummary]:
            return category_summaries_from(connection.execute(CATEGORY_SUMMARIES))

        return await self._database.read(query)


class ReadOnlyUnitOfWork:
    """The UnitOfWork port for queries: no transaction to open, nothing to commit."""

    def __init__(self, database: Database) -> None:
        self.products = ProductReader(database)
        self.categories = CategoryReader(database)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Nothing is held between the calls; a database that cannot answer just now is
        # told apart from a wrong request, as the SQLAlchemy unit of work does.
        if exc is not None and storage_unavailable(exc):
            raise StorageUnavailableError(str(exc)) from exc

    async def commit(self) -> None:
        raise ReadOnlyStorageError("this unit of work only reads: there is nothing to commit")
