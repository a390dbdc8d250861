"""The SQLAlchemy repositories, unit of work and inbox on a real SQLite database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData

from chassis.messaging import tables as messaging_tables
from contracts.events import OrderItem, OrderPlaced, PaymentCaptured
from contracts.money import Money
from notifications.adapters.orm import metadata
from notifications.domain.model import Notification
from notifications.service_layer.handlers import take_in
from services.notifications.tests.unit.conftest import AT, delivery_of

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from chassis import Database
    from notifications.adapters.unit_of_work import SqlAlchemyUnitOfWork

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def notification(n: int, customer_id: str = "c-1") -> Notification:
    return Notification(
        id=f"m-{n}",
        customer_id=customer_id,
        order_id=f"o-{n}",
        subject="OrderRejected",
        text=f"Your order o-{n} could not be completed: gone",
        occurred_at=NOW + timedelta(minutes=n),
    )


async def test_the_migrations_build_exactly_the_schema_the_tables_describe(
    database: Database,
) -> None:
    """Notifications' tables, and the chassis's messaging tables."""
    described = MetaData()
    for table in (*metadata.tables.values(), *messaging_tables.metadata.tables.values()):
        table.to_metadata(described)

    def differences(connection: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(connection), described))

    async with database.engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_a_customers_notifications_read_back_newest_first_in_utc(
    uow: SqlAlchemyUnitOfWork,
) -> None:
    async with uow:
        for n in (1, 3, 2):
            await uow.notifications.add(notification(n))
        await uow.notifications.add(notification(4, customer_id="c-2"))
        await uow.commit()

    async with uow:
        page, total = await uow.notifications.for_customer("c-1", offset=1, limit=5)
        nobodys, none = await uow.notifications.for_customer("c-9", offset=0, limit=5)

    assert page == [notification(2), notification(1)]
    assert page[0].occurred_at.tzinfo is not None
    assert (total, nobodys, none) == (3, [], 0)


async def test_the_customer_of_an_order_is_remembered_once(uow: SqlAlchemyUnitOfWork) -> None:
    async with uow:
        await uow.order_customers.remember("o-1", "c-1")
        await uow.order_customers.remember("o-1", "c-1")
        await uow.commit()

    async with uow:
        assert await uow.order_customers.customer_of("o-1") == "c-1"
        assert await uow.order_customers.customer_of("o-2") is None


async def test_a_message_taken_in_twice_makes_one_notification(uow: SqlAlchemyUnitOfWork) -> None:
    placed = OrderPlaced("o-1", "c-1", (OrderItem("p-1", 1),), AT)
    delivery = delivery_of(placed)

    first = await take_in(placed, delivery, uow)
    second = await take_in(placed, delivery, uow)

    assert first is not None
    assert second is None
    async with uow:
        _, total = await uow.notifications.for_customer("c-1", offset=0, limit=10)
        assert await uow.inbox.seen(delivery)
    assert total == 1


async def test_a_payment_naming_no_customer_goes_to_the_customer_its_order_named(
    uow: SqlAlchemyUnitOfWork,
) -> None:
    placed = OrderPlaced("o-1", "c-1", (OrderItem("p-1", 1),), AT)
    await take_in(placed, delivery_of(placed), uow)
    captured = PaymentCaptured("pay-1", "o-1", Money(990, "EUR"), AT)

    notification = await take_in(captured, delivery_of(captured), uow)

    assert notification is not None
    assert notification.customer_id == "c-1"
