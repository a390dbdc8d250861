"""The SQLAlchemy repositories and unit of work on a real SQLite database."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData

from catalog.adapters.demo_catalog import load_demo_catalog
from catalog.adapters.orm import metadata
from catalog.adapters.unit_of_work import SqlAlchemyUnitOfWork
from catalog.domain.commands import CreateProduct, ImportCatalog, UpdateProduct
from catalog.domain.errors import ConcurrentUpdate, DuplicateSku, UnknownCategory
from catalog.domain.model import Product
from catalog.service_layer.handlers import create_product, import_catalog, update_product
from catalog.service_layer.ports import ProductSort
from catalog.service_layer.queries import list_categories, list_products
from chassis.messaging import tables as messaging_tables
from contracts import Money

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from chassis import Database


def saffron(**overrides: object) -> Product:
    fields: dict[str, object] = {
        "sku": "SPC-SAFFRON-2G",
        "name": "Taliouine saffron threads, 2 g",
        "description": "Hand-picked stigmas, dried the same day.",
        "category": "spices",
        "price": Money(1490, "EUR"),
    }
    fields.update(overrides)
    return Product.create(**fields)  # type: ignore[arg-type]


async def stock(uow: SqlAlchemyUnitOfWork, *products: Product) -> None:
    async with uow:
        for product in products:
            await uow.products.add(product)
        await uow.commit()


async def test_the_migrations_build_exactly_the_schema_the_tables_describe(
    database: Database,
) -> None:
    """The catalog's tables, and the chassis's messaging tables (its outbox).

    The full-text index (products_fts and the shadow tables FTS5 keeps) is each backend's
    own and not in the metadata; test_search.py proves it.
    """
    described = MetaData()
    for table in (*metadata.tables.values(), *messaging_tables.metadata.tables.values()):
        table.to_metadata(described)

    def not_the_search_index(name: str | None, kind: str, _: object) -> bool:
        return not (kind == "table" and (name or "").startswith("products_fts"))

    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(
            connection, opts={"include_name": not_the_search_index}
        )
        return list(compare_metadata(context, described))

    async with database.engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_a_stored_product_reads_back_by_id_and_by_sku(uow: SqlAlchemyUnitOfWork) -> None:
    await stock(uow, saffron())

    async with uow:
        by_id = await uow.products.get(saffron().id)
        by_sku = await uow.products.get_by_sku("SPC-SAFFRON-2G")

    assert by_id is not None
    assert by_sku is not None
    assert (by_id.id, by_id.name, by_id.description, by_id.price, by_id.version) == (
        by_sku.id,
        "Taliouine saffron threads, 2 g",
        "Hand-picked stigmas, dried the same day.",
        Money(1490, "EUR"),
        1,
    )


async def test_unknown_and_malformed_ids_find_nothing(uow: SqlAlchemyUnitOfWork) -> None:
    async with uow:
        assert await uow.products.get("00000000-0000-0000-0000-000000000000") is None
        assert await uow.products.get("not a uuid; DROP TABLE products") is None


async def test_what_is_not_committed_is_rolled_back(uow: SqlAlchemyUnitOfWork) -> None:
    async with uow:
        await uow.products.add(saffron())

    async with uow:
        assert await uow.products.get(saffron().id) is None


async def test_the_database_refuses_a_second_product_with_the_same_sku(
    uow: SqlAlchemyUnitOfWork,
) -> None:
    await stock(uow, saffron())

    with pytest.raises(DuplicateSku):
        await stock(uow, saffron(name="Saffron again"))


async def test_a_revision_saved_over_a_concurrent_one_is_refused_as_a_concurrent_update(
    database: Database,
) -> None:
    first, second = (SqlAlchemyUnitOfWork(database.sessionmaker) for _ in range(2))
    await stock(first, saffron())

    async with first, second:
        mine = await first.products.get(saffron().id)
        theirs = await second.products.get(saffron().id)
        assert mine is not None
        assert theirs is not None
        theirs.revise(price=Money(1290, "EUR"))
        await second.products.save(theirs)
        await second.commit()
        mine.revise(name="Saffron")
        with pytest.raises(ConcurrentUpdate):
            await first.products.save(mine)

    async with first:
        stored = await first.products.get(saffron().id)
    assert stored is not None
    assert (stored.name, stored.price, stored.version) == (
        "Taliouine saffron threads, 2 g",
        Money(1290, "EUR"),
        2,
    )


async def test_handlers_create_and_revise_products_in_the_database(
    uow: SqlAlchemyUnitOfWork,
) -> None:
    created = await create_product(
        CreateProduct(sku="CER-BOWL-1", name="Bowl", category="ceramics", price=Money(900, "EUR")),
        uow,
    )

    await update_product(
        UpdateProduct(product_id=created.id, description="Fes blue.", expected_version=1), uow
    )

    async with uow:
        stored = await uow.products.get(created.id)
    assert stored is not None
    assert (stored.description, stored.version) == ("Fes blue.", 2)


async def test_a_search_matches_name_or_description_in_any_case(
    uow: SqlAlchemyUnitOfWork,
) -> None:
    await stock(
        uow,
        saffron(),
        saffron(sku="SPC-CUMIN", name="Ground cumin", description="Earthy, from SAFFRON country."),
        saffron(sku="SPC-PAPRIKA", name="Paprika", description="Sweet."),
    )

    page = await list_products(uow, q="saffron")

    assert sorted(p.sku for p in page.items) == ["SPC-CUMIN", "SPC-SAFFRON-2G"]


# Search is by words (full-text, test_search.py): punctuation is no word, so a LIKE wildcard
# finds nothing rather than everything, and inside a word it separates, as a space would.
@pytest.mark.parametrize(
    ("text", "found"),
    [("%", []), ("_", []), ("\\", []), ("100%", ["SPC-PCT"]), ("low_cost", ["SPC-LOW"])],
)
async def test_like_wildcards_in_a_search_are_never_wildcards(
    uow: SqlAlchemyUnitOfWork, text: str, found: list[str]
) -> None:
    await stock(
        uow,
        saffron(sku="SPC-PCT", name="100% saffron", description=""),
        saffron(sku="SPC-LOW", name="low_cost cumin", description=""),
        saffron(sku="SPC-PLAIN", name="Plain paprika", description=""),
    )

    page = await list_products(uow, q=text)

    assert [p.sku for p in page.items] == found


async def test_listings_filter_sort_and_slice_in_the_database(uow: SqlAlchemyUnitOfWork) -> None:
    await stock(
        uow,
        saffron(sku="SPC-A", name="b spice", price=Money(300, "EUR")),
        saffron(sku="SPC-B", name="A spice", price=Money(100, "EUR")),
        saffron(sku="SPC-C", name="c spice", price=Money(200, "EUR")),
        saffron(sku="TEA-A", name="Tea", category="tea-coffee", price=Money(50, "EUR")),
    )

    by_name = await list_products(uow, category="spices", page=1, page_size=2)
    by_price = await list_products(uow, category="spices", sort=ProductSort.PRICE)
    dearest = await list_products(uow, sort=ProductSort.PRICE_DESCENDING, page=2, page_size=3)

    assert ([p.name for p in by_name.items], by_name.total) == (["A spice", "b spice"], 3)
    assert [p.sku for p in by_price.items] == ["SPC-B", "SPC-C", "SPC-A"]
    assert ([p.sku for p in dearest.items], dearest.total) == (["TEA-A"], 4)


async def test_every_category_is_counted_even_when_empty(uow: SqlAlchemyUnitOfWork) -> None:
    await stock(uow, saffron(), saffron(sku="SPC-CUMIN"))

    counts = {c.slug: c.product_count for c in await list_categories(uow)}

    assert counts["spices"] == 2
    assert counts["rugs"] == 0


async def test_importing_the_demo_catalog_twice_adds_it_once(uow: SqlAlchemyUnitOfWork) -> None:
    demo = load_demo_catalog()

    first = await import_catalog(demo, uow)
    second = await import_catalog(demo, uow)

    assert (first, second) == (len(demo.products), 0)
    assert (await list_products(uow)).total == len(demo.products)


async def test_an_import_into_an_unknown_category_adds_nothing(uow: SqlAlchemyUnitOfWork) -> None:
    good = CreateProduct(sku="RUG-1", name="Rug", category="rugs", price=Money(100, "EUR"))
    bad = CreateProduct(sku="RUG-2", name="Rug", category="carpets", price=Money(100, "EUR"))

    with pytest.raises(UnknownCategory):
        await import_catalog(ImportCatalog(products=(good, bad)), uow)

    assert (await list_products(uow)).total == 0
