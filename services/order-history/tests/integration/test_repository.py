"""The repositories, the archive and the projection's lock on real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from typing import TYPE_CHECKING

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, delete, insert, select

from chassis.messaging import tables as messaging_tables
from contracts import Money
from contracts.events import (
    Delivery,
    OrderPlaced,
    PaymentAuthorized,
    PaymentCaptured,
    StockReserved,
)
from order_history.adapters.orm import metadata, order_views, products, projection
from order_history.adapters.repository import document_of
from order_history.adapters.unit_of_work import SqlAlchemyUnitOfWork
from order_history.domain.model import OrderView, Product
from order_history.service_layer.handlers import take_in
from order_history.service_layer.rebuilding import rebuild

# services/order-history has no absolute module name (the dash): relative it is.
from ..unit.conftest import (  # noqa: TID252
    CONFIRMED_STORY,
    PLACED,
    RESERVED,
    SAFFRON_CREATED,
    SAFFRON_RENAMED,
    at,
    message,
)

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from chassis import Database
    from contracts.events import Event


async def test_the_migrations_build_exactly_the_schema_the_tables_describe(
    database: Database,
) -> None:
    """Order-history's tables, and the chassis's messaging tables."""
    described = MetaData()
    for table in (*metadata.tables.values(), *messaging_tables.metadata.tables.values()):
        table.to_metadata(described)

    def differences(connection: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(connection), described))

    async with database.engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_a_view_reads_back_exactly_as_it_was_saved(uow: SqlAlchemyUnitOfWork) -> None:
    view = OrderView("o-1")
    for event in CONFIRMED_STORY:
        view.apply(event)
    empty = OrderView("o-2")

    async with uow:
        await uow.orders.save(view)
        await uow.orders.save(empty)
        await uow.commit()
    async with uow:
        assert await uow.orders.get("o-1") == view
        assert await uow.orders.get("o-2") == empty
        assert await uow.orders.get("o-3") is None


async def test_a_delivery_reads_back_and_a_row_stored_before_deliveries_is_served_without(
    database: Database, uow: SqlAlchemyUnitOfWork
) -> None:
    delivery = Delivery("Amina Benali", "12 Derb Sidi Ahmed", "30110", "Fes", "MA", "standard")
    delivered = OrderView("o-1")
    delivered.apply(dataclasses.replace(PLACED, delivery=delivery))
    async with uow:
        await uow.orders.save(delivered)
        await uow.commit()
    # A row of the release before deliveries: its document has no "delivery" key at all.
    before = OrderView("o-2")
    before.apply(dataclasses.replace(PLACED, order_id="o-2"))
    document = document_of(before)
    del document["delivery"]
    async with database.engine.begin() as connection:
        await connection.execute(
            insert(order_views).values(
                order_id="o-2",
                customer_id="c-1",
                status="PENDING",
                placed_at=before.placed_at,
                document=document,
            )
        )

    async with uow:
        assert await uow.orders.get("o-1") == delivered
        assert (await uow.orders.get("o-1") or OrderView("")).delivery == delivery
        assert await uow.orders.get("o-2") == before
        listed, total = await uow.orders.for_customer("c-1", offset=0, limit=10)
    assert total == 2
    assert {view.order_id: view.delivery for view in listed} == {"o-1": delivery, "o-2": None}


async def test_a_customers_listed_orders_come_latest_placed_first(
    uow: SqlAlchemyUnitOfWork,
) -> None:
    views = []
    for n, customer in [(1, "c-1"), (3, "c-1"), (2, "c-1"), (4, "c-2")]:
        view = OrderView(f"o-{n}")
        view.apply(OrderPlaced(f"o-{n}", customer, PLACED.items, at(n)))
        views.append(view)
    unlisted = OrderView("o-5")
    unlisted.apply(PaymentCaptured("pay-5", "o-5", Money(1, "EUR"), at(9), customer_id="c-1"))

    async with uow:
        await uow.orders.replace_all([*views, unlisted])
        await uow.commit()
    async with uow:
        page, total = await uow.orders.for_customer("c-1", offset=1, limit=5)
        nobodys = await uow.orders.for_customer("c-9", offset=0, limit=5)

    assert ([v.order_id for v in page], total) == (["o-2", "o-1"], 3)
    assert nobodys == ([], 0)


async def test_products_are_kept_by_id_at_their_latest_version(uow: SqlAlchemyUnitOfWork) -> None:
    for event in (SAFFRON_CREATED, SAFFRON_RENAMED, SAFFRON_CREATED):
        await take_in(message(event), uow)

    async with uow:
        found = await uow.products.some([SAFFRON_CREATED.product_id, "unknown"])

    assert found == {
        SAFFRON_CREATED.product_id: Product(
            SAFFRON_CREATED.product_id, "SPC-SAFFRON-2G", "Taliouine saffron threads, 2 g", 2
        )
    }


async def test_a_message_taken_in_twice_is_archived_and_projected_once(
    uow: SqlAlchemyUnitOfWork,
) -> None:
    placed = message(PLACED)

    assert await take_in(placed, uow)
    assert not await take_in(placed, uow)

    async with uow:
        assert await uow.archive.count() == 1
        [archived] = await uow.archive.after(0, limit=10)
    assert archived.message == placed


async def test_concurrent_deliveries_of_one_orders_events_lose_no_update(
    database: Database,
) -> None:
    """Each topic's consumer runs on its own: the lock makes their merges take turns."""
    events: list[Event] = [
        *CONFIRMED_STORY,
        StockReserved("o-1", RESERVED.lines, at(30), at(11)),
        PaymentAuthorized("pay-1", "o-1", Money(5975, "EUR"), "payment-primary", at(12)),
    ]

    async def deliver(event: Event) -> None:
        await take_in(message(event), SqlAlchemyUnitOfWork(database.sessionmaker))

    await asyncio.gather(*(deliver(event) for event in events))

    async with SqlAlchemyUnitOfWork(database.sessionmaker) as uow:
        view = await uow.orders.get("o-1")
        assert await uow.archive.count() == len(events)
    expected = OrderView("o-1")
    for event in events:
        expected.apply(event)
    assert view == expected


async def dump(database: Database) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the read model's tables, in key order."""
    async with database.engine.connect() as connection:
        return {
            table.name: [
                tuple(row)
                for row in await connection.execute(
                    select(table).order_by(*table.primary_key.columns)
                )
            ]
            for table in (order_views, products)
        }


async def test_a_rebuild_gives_exactly_the_rows_the_live_projection_wrote(
    database: Database, uow: SqlAlchemyUnitOfWork
) -> None:
    other = OrderPlaced("o-2", "c-2", PLACED.items, at(20))
    messages = [message(e) for e in (*CONFIRMED_STORY, SAFFRON_CREATED, SAFFRON_RENAMED, other)]
    messages += messages[:3]  # redelivered
    random.Random(5).shuffle(messages)
    for each in messages:
        await take_in(each, uow)
    live = await dump(database)
    async with database.engine.begin() as connection:
        await connection.execute(delete(order_views))  # lost: only the archive is left

    rebuilt = await rebuild(uow)

    assert await dump(database) == live
    assert (rebuilt.events, rebuilt.orders, rebuilt.products) == (9, 2, 1)
    async with database.engine.connect() as connection:
        [(rebuilds, rebuilt_at)] = await connection.execute(
            select(projection.c.rebuilds, projection.c.rebuilt_at)
        )
    assert rebuilds == 1
    assert rebuilt_at is not None
