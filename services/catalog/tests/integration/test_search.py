"""Full-text search on each backend's own engine: SQLite FTS5 and PostgreSQL tsvector.

Run on a SQLite file and on a scratch PostgreSQL database (skipped without the server,
failed under CI=true), through both the read path and the SQLAlchemy unit of work, over
the demo catalog.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from catalog.adapters.demo_catalog import load_demo_catalog
from catalog.adapters.reading import ReadOnlyUnitOfWork
from catalog.adapters.unit_of_work import SqlAlchemyUnitOfWork
from catalog.app import MIGRATIONS
from catalog.domain.commands import CreateProduct, UpdateProduct
from catalog.service_layer.handlers import create_product, import_catalog, update_product
from catalog.service_layer.ports import ProductSort
from catalog.service_layer.queries import list_products
from chassis import Database
from contracts import Money
from souk.testing import scratch_database

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from catalog.service_layer.ports import UnitOfWork

LAMPS = 8  # the demo catalog's "Lamps & lanterns" shelf


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with scratch_database(request.param, tmp_path, "catalog-search") as url:
        database = Database(url, migrations=MIGRATIONS)
        await database.migrate()
        await import_catalog(load_demo_catalog(), SqlAlchemyUnitOfWork(database.sessionmaker))
        yield database
        await database.dispose()


@pytest.fixture(params=["reads", "session"])
def uow(request: pytest.FixtureRequest, database: Database) -> UnitOfWork:
    """The read path the API uses, and the unit of work the handlers use."""
    if request.param == "reads":
        return ReadOnlyUnitOfWork(database)
    return SqlAlchemyUnitOfWork(database.sessionmaker)


async def names(uow: UnitOfWork, q: str | None, **options: object) -> list[str]:
    page = await list_products(uow, q=q, page_size=100, **options)  # type: ignore[arg-type]
    assert page.total == len(page.items)
    return [product.name for product in page.items]


async def test_a_word_finds_the_products_of_the_shelf_it_names_stemmed(uow: UnitOfWork) -> None:
    # "lamp" is in two names; the shelf "lamps-lanterns" holds eight, stemmed to "lamp".
    found = await names(uow, "lamp")

    assert len(found) >= LAMPS
    assert {"Copper ceiling light", "Brass wall sconce"} <= set(found)
    # Lamps by name first: a name outranks a category.
    assert set(found[:2]) == {"Henna-painted goatskin lamp", "Mosaic glass table lamp"}


async def test_a_name_outranks_a_description(uow: UnitOfWork) -> None:
    found = await names(uow, "saffron")

    assert found[0] == "Taliouine saffron threads, 2 g"
    assert "Babouche slippers, size 42" in found[1:]  # "saffron-yellow leather"


async def test_plurals_and_prefixes_find_the_same_products(uow: UnitOfWork) -> None:
    singular = await names(uow, "lantern")
    plural = await names(uow, "LANTERNS")
    prefix = await names(uow, "lant")

    assert "Coloured glass lantern" in singular
    assert singular == plural
    assert set(singular) <= set(prefix)


async def test_every_word_must_match(uow: UnitOfWork) -> None:
    found = await names(uow, "glass lantern")

    assert "Coloured glass lantern" in found
    assert "Pierced brass lantern, large" not in found  # no glass in it


async def test_a_search_can_be_sorted_by_price_or_name_and_bounded_by_price(
    uow: UnitOfWork,
) -> None:
    by_price = await list_products(uow, q="lamp", sort=ProductSort.PRICE, page_size=100)
    by_name = await names(uow, "lamp", sort=ProductSort.NAME)
    bounded = await list_products(uow, q="lamp", min_price=5000, max_price=9000, page_size=100)

    prices = [product.price.amount for product in by_price.items]
    assert prices == sorted(prices)
    assert by_name == sorted(by_name, key=str.lower)
    assert bounded.items
    assert all(5000 <= product.price.amount <= 9000 for product in bounded.items)
    assert bounded.total < by_price.total


async def test_price_bounds_apply_without_search_text(uow: UnitOfWork) -> None:
    page = await list_products(uow, max_price=500, sort=ProductSort.PRICE, page_size=100)

    assert page.items
    assert all(product.price.amount <= 500 for product in page.items)


@pytest.mark.parametrize(
    "query", ['"', "lamp\" OR 'x", "NEAR(lamp", "*", "a:b & | !", "%", "-lamp", "()"]
)
async def test_search_syntax_in_the_text_is_never_an_error(uow: UnitOfWork, query: str) -> None:
    page = await list_products(uow, q=query)

    assert page.total >= 0


async def test_only_punctuation_finds_nothing(uow: UnitOfWork) -> None:
    assert (await list_products(uow, q="%")).total == 0


async def test_new_and_revised_products_are_found_by_their_current_words(
    database: Database,
) -> None:
    writes = SqlAlchemyUnitOfWork(database.sessionmaker)
    reads = ReadOnlyUnitOfWork(database)
    product = await create_product(
        CreateProduct(
            sku="TXT-ZELLIGE-COASTERS",
            name="Moonstone coasters, set of 6",
            category="ceramics",
            price=Money(2400, "EUR"),
        ),
        writes,
    )
    assert await names(reads, "moonstone coaster") == ["Moonstone coasters, set of 6"]

    await update_product(UpdateProduct(product_id=product.id, name="Sunstone trivets"), writes)

    assert await names(reads, "moonstone") == []
    assert await names(reads, "trivet") == ["Sunstone trivets"]
