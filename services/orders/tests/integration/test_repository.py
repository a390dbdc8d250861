"""The event-sourced orders, the other repositories and the unit of work on a real SQLite
database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData

from chassis.eventstore import tables as eventstore_tables
from chassis.messaging import tables as messaging_tables
from orders.adapters.orm import metadata
from orders.adapters.unit_of_work import SqlAlchemyUnitOfWork
from orders.domain.commands import RequestedItem
from orders.domain.errors import IdempotencyKeyTaken, StaleOrder
from orders.domain.model import Order, OrderStatus, StepDone
from orders.domain.saga_definition import Step
from orders.service_layer.ports import IdempotencyRecord, ListPosition
from services.orders.tests.conftest import GOOD_CARD, SAFFRON, TEA

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from chassis import Database

AT = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def new_order(at: datetime = AT) -> Order:
    return Order.place(
        customer_id="c-1",
        items=[RequestedItem(SAFFRON.product_id, 2), RequestedItem(TEA.product_id, 1)],
        card_token=GOOD_CARD,
        at=at,
    )


async def stored(uow: SqlAlchemyUnitOfWork, *orders: Order) -> None:
    async with uow:
        for order in orders:
            await uow.orders.add(order)
        await uow.commit()


async def changed(uow: SqlAlchemyUnitOfWork, order: Order) -> Order:
    """The order loaded, priced and begun on its reservation, saved."""
    async with uow:
        loaded = await uow.orders.get(order.id)
        assert loaded is not None
        products = {SAFFRON.product_id: SAFFRON, TEA.product_id: TEA}
        loaded.record_done(StepDone(Step.PRICE, products=products), AT)
        loaded.begin(Step.RESERVE_STOCK, AT)
        await uow.orders.save(loaded)
        await uow.commit()
    return loaded


async def test_the_migrations_build_exactly_the_schema_the_tables_describe(
    database: Database,
) -> None:
    """The orders' tables, and the chassis's messaging and event-store tables."""
    described = MetaData()
    for table in (
        *metadata.tables.values(),
        *messaging_tables.metadata.tables.values(),
        *eventstore_tables.metadata.tables.values(),
    ):
        table.to_metadata(described)

    def differences(connection: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(connection), described))

    async with database.engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_an_order_reads_back_with_its_lines_steps_and_times_in_utc(
    uow: SqlAlchemyUnitOfWork,
) -> None:
    order = new_order()
    await stored(uow, order)
    saved = await changed(uow, order)

    async with uow:
        loaded = await uow.orders.get(order.id)

    assert loaded is not None
    assert loaded.lines == saved.lines
    assert loaded.steps == saved.steps
    assert (loaded.created_at, loaded.updated_at) == (AT, AT)
    # Placed, priced, the price step recorded, the reservation begun: four events.
    assert (loaded.step_in_progress, loaded.version) == (Step.RESERVE_STOCK, 4)
    assert (loaded.customer_id, loaded.card_token, loaded.status) == (
        "c-1",
        GOOD_CARD,
        OrderStatus.PENDING,
    )


async def test_an_unknown_order_is_none(uow: SqlAlchemyUnitOfWork) -> None:
    async with uow:
        assert await uow.orders.get("no-such-order") is None


async def test_a_save_over_a_concurrent_one_is_refused_as_stale(
    database: Database, uow: SqlAlchemyUnitOfWork
) -> None:
    order = new_order()
    await stored(uow, order)
    other = SqlAlchemyUnitOfWork(database.sessionmaker)

    async with other:
        late = await other.orders.get(order.id)
        assert late is not None
        await changed(uow, order)
        late.cancel(AT)
        with pytest.raises(StaleOrder):
            await other.orders.save(late)

    async with uow:
        current = await uow.orders.get(order.id)
    assert current is not None
    assert current.status is OrderStatus.PENDING


async def test_a_taken_idempotency_key_is_refused_and_its_order_rolled_back(
    uow: SqlAlchemyUnitOfWork,
) -> None:
    first, second = new_order(), new_order()
    async with uow:
        await uow.orders.add(first)
        await uow.idempotency_keys.add(IdempotencyRecord("k-1", "f" * 64, first.id, AT))
        await uow.commit()

    async with uow:
        await uow.orders.add(second)
        with pytest.raises(IdempotencyKeyTaken):
            await uow.idempotency_keys.add(IdempotencyRecord("k-1", "f" * 64, second.id, AT))

    async with uow:
        assert await uow.orders.get(second.id) is None
        record = await uow.idempotency_keys.get("k-1")
    assert record is not None
    assert (record.order_id, record.created_at) == (first.id, AT)


async def test_a_customers_orders_come_newest_first_with_their_count(
    uow: SqlAlchemyUnitOfWork,
) -> None:
    orders = [new_order(AT + timedelta(minutes=n)) for n in range(3)]
    await stored(uow, *orders)

    async with uow:
        page, total = await uow.orders.for_customer("c-1", offset=1, limit=5)
        nobodys, none = await uow.orders.for_customer("c-2", offset=0, limit=5)

    assert [o.id for o in page] == [orders[1].id, orders[0].id]
    assert (total, nobodys, none) == (3, [], 0)


async def test_after_a_position_come_only_older_orders_ties_broken_by_id(
    uow: SqlAlchemyUnitOfWork,
) -> None:
    # Two orders placed in the same microsecond still have one place each in the listing.
    orders = [new_order(AT + timedelta(minutes=n)) for n in (0, 1, 1, 2)]
    await stored(uow, *orders)
    newest_first = sorted(orders, key=lambda o: (o.created_at, o.id), reverse=True)

    walked: list[str] = []
    before = None
    while True:
        async with uow:
            page, _ = await uow.orders.for_customer("c-1", offset=0, limit=1, before=before)
        if not page:
            break
        walked.append(page[0].id)
        before = ListPosition(created_at=page[0].created_at, order_id=page[0].id)

    assert walked == [o.id for o in newest_first]


async def test_the_count_after_a_position_is_of_the_older_orders_only(
    uow: SqlAlchemyUnitOfWork,
) -> None:
    orders = [new_order(AT + timedelta(minutes=n)) for n in range(3)]
    await stored(uow, *orders)
    # A position in another time zone names the same instant.
    middle = ListPosition(
        created_at=orders[1].created_at.astimezone(timezone(timedelta(hours=1))),
        order_id=orders[1].id,
    )

    async with uow:
        page, total = await uow.orders.for_customer("c-1", offset=0, limit=5, before=middle)

    assert ([o.id for o in page], total) == ([orders[0].id], 1)
