"""The catalog's product events reach the outbox in the transaction that stores the change, or
not at all; seeding the demo catalog publishes its products once."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select

from catalog.adapters.demo_catalog import load_demo_catalog
from catalog.domain.commands import CreateProduct, UpdateProduct
from catalog.domain.errors import StaleProduct, UnknownCategory
from catalog.domain.model import product_id_for
from catalog.service_layer.handlers import create_product, import_catalog, update_product
from chassis.messaging.tables import outbox
from contracts import Money
from contracts.events import ProductCreated, ProductUpdated, decode

if TYPE_CHECKING:
    from catalog.adapters.unit_of_work import SqlAlchemyUnitOfWork
    from chassis import Database
    from contracts.events import Event

SAFFRON = CreateProduct(
    sku="SPC-SAFFRON-2G", name="Saffron threads", category="spices", price=Money(1490, "EUR")
)


async def published(database: Database) -> list[tuple[str, Event]]:
    """The outbox's rows, oldest first, as (key, decoded event); checks the topic and headers."""
    async with database.sessionmaker() as session:
        rows = (await session.execute(select(outbox).order_by(outbox.c.id))).all()
    found = []
    for row in rows:
        assert row.topic == "catalog"
        assert row.headers["souk-key"] == row.key
        found.append((row.key, decode(row.event_type, row.schema_version, row.payload)))
    return found


async def test_creating_and_revising_a_product_publishes_its_whole_state_each_time(
    database: Database, uow: SqlAlchemyUnitOfWork
) -> None:
    product = await create_product(SAFFRON, uow)
    await update_product(UpdateProduct(product.id, name="Saffron threads, 2 g"), uow)
    await update_product(UpdateProduct(product.id, price=Money(1590, "EUR")), uow)

    events = await published(database)

    assert [key for key, _ in events] == [product.id] * 3
    created, renamed, repriced = (event for _, event in events)
    assert isinstance(created, ProductCreated)
    assert (created.sku, created.name, created.price, created.version) == (
        "SPC-SAFFRON-2G",
        "Saffron threads",
        Money(1490, "EUR"),
        1,
    )
    assert isinstance(renamed, ProductUpdated)
    assert (renamed.name, renamed.version, renamed.changed) == (
        "Saffron threads, 2 g",
        2,
        ("name",),
    )
    assert isinstance(repriced, ProductUpdated)
    assert (repriced.sku, repriced.name, repriced.price, repriced.version, repriced.changed) == (
        "SPC-SAFFRON-2G",
        "Saffron threads, 2 g",
        Money(1590, "EUR"),
        3,
        ("price",),
    )


async def test_a_refused_change_publishes_nothing(
    database: Database, uow: SqlAlchemyUnitOfWork
) -> None:
    product = await create_product(SAFFRON, uow)

    with pytest.raises(StaleProduct):
        await update_product(UpdateProduct(product.id, name="Other", expected_version=7), uow)
    with pytest.raises(UnknownCategory):
        await create_product(
            CreateProduct(sku="X-1", name="X", category="nowhere", price=Money(1, "EUR")), uow
        )
    await update_product(UpdateProduct(product.id, name="Saffron threads"), uow)  # no change

    assert [type(event) for _, event in await published(database)] == [ProductCreated]


async def test_seeding_the_demo_catalog_publishes_each_product_once(
    database: Database, uow: SqlAlchemyUnitOfWork
) -> None:
    demo = load_demo_catalog()

    await import_catalog(demo, uow)
    await import_catalog(demo, uow)  # a restart, or the second replica

    events = await published(database)
    assert sorted(key for key, _ in events) == sorted(product_id_for(p.sku) for p in demo.products)
    assert all(isinstance(event, ProductCreated) for _, event in events)
