"""The SQLAlchemy repositories and unit of work on a real SQLite database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData

from billing.adapters.orm import metadata
from billing.adapters.unit_of_work import SqlAlchemyUnitOfWork
from billing.domain.errors import IdempotencyKeyInFlight
from billing.domain.model import Payment, PaymentStatus
from billing.service_layer.ports import IdempotencyRecord
from chassis.eventstore import tables as event_store_tables
from chassis.messaging import tables as messaging_tables
from contracts import Money

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from chassis import Database

NOW = datetime(2025, 11, 25, 12, 0, tzinfo=UTC)


def authorized(payment_id: str = "payment-1", *, at: datetime = NOW) -> Payment:
    return Payment.authorized(
        id=payment_id,
        order_id="order-1",
        amount=Money(1490, "EUR"),
        provider="payment-backup",
        provider_reference="auth_1",
        at=at,
    )


def record(key: str = "key-1", payment_id: str = "payment-1") -> IdempotencyRecord:
    return IdempotencyRecord(
        key=key,
        fingerprint="f" * 64,
        payment_id=payment_id,
        locked_until=NOW + timedelta(seconds=30),
    )


async def test_the_migrations_build_exactly_the_schema_the_tables_describe(
    database: Database,
) -> None:
    """Billing's tables, and the chassis's messaging and event-store tables."""
    described = MetaData()
    for table in (
        *metadata.tables.values(),
        *messaging_tables.metadata.tables.values(),
        *event_store_tables.metadata.tables.values(),
    ):
        table.to_metadata(described)

    def differences(connection: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(connection), described))

    async with database.engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_a_stored_payment_reads_back_as_it_was_in_utc(uow: SqlAlchemyUnitOfWork) -> None:
    async with uow:
        await uow.payments.add(authorized())
        await uow.commit()

    async with uow:
        stored = await uow.payments.get("payment-1")

    assert stored is not None
    assert (
        stored.order_id,
        stored.amount,
        stored.status,
        stored.provider,
        stored.authorization,
        stored.created_at,
        stored.events,
    ) == (
        "order-1",
        Money(1490, "EUR"),
        PaymentStatus.AUTHORIZED,
        "payment-backup",
        "auth_1",
        NOW,
        [],
    )


async def test_a_saved_payment_keeps_its_new_status(uow: SqlAlchemyUnitOfWork) -> None:
    async with uow:
        await uow.payments.add(authorized())
        await uow.commit()

    async with uow:
        payment = await uow.payments.get("payment-1")
        assert payment is not None
        payment.capture()
        await uow.payments.save(payment)
        await uow.commit()

    async with uow:
        stored = await uow.payments.get("payment-1")
    assert stored is not None
    assert stored.status is PaymentStatus.CAPTURED


async def test_what_is_not_committed_is_rolled_back(uow: SqlAlchemyUnitOfWork) -> None:
    async with uow:
        await uow.payments.add(authorized())
        await uow.idempotency_keys.add(record())

    async with uow:
        assert await uow.payments.get("payment-1") is None
        assert await uow.idempotency_keys.get("key-1") is None


async def test_the_payments_of_an_order_come_oldest_first(uow: SqlAlchemyUnitOfWork) -> None:
    async with uow:
        await uow.payments.add(authorized("payment-b", at=NOW + timedelta(seconds=1)))
        await uow.payments.add(authorized("payment-a", at=NOW + timedelta(seconds=2)))
        await uow.payments.add(authorized("payment-c", at=NOW))
        await uow.commit()

    async with uow:
        listed = await uow.payments.for_order("order-1")
        others = await uow.payments.for_order("order-2")

    assert ([p.id for p in listed], others) == (["payment-c", "payment-b", "payment-a"], [])


async def test_a_key_taken_by_a_concurrent_request_cannot_be_taken_again(
    database: Database,
) -> None:
    first, second = (SqlAlchemyUnitOfWork(database.sessionmaker) for _ in range(2))

    async with first, second:
        assert await second.idempotency_keys.get("key-1") is None
        await first.idempotency_keys.add(record())
        await first.commit()
        with pytest.raises(IdempotencyKeyInFlight):
            await second.idempotency_keys.add(record(payment_id="payment-2"))

    async with first:
        stored = await first.idempotency_keys.get("key-1")
    assert stored is not None
    assert (stored.payment_id, stored.locked_until, stored.version) == (
        "payment-1",
        NOW + timedelta(seconds=30),
        1,
    )


async def test_a_key_changed_since_it_was_read_cannot_be_saved_over(
    database: Database,
) -> None:
    first, second = (SqlAlchemyUnitOfWork(database.sessionmaker) for _ in range(2))
    async with first:
        await first.idempotency_keys.add(record())
        await first.commit()

    async with first, second:
        mine = await first.idempotency_keys.get("key-1")
        theirs = await second.idempotency_keys.get("key-1")
        assert mine is not None
        assert theirs is not None
        theirs.locked_until = None
        await second.idempotency_keys.save(theirs)
        await second.commit()
        mine.locked_until = NOW + timedelta(minutes=5)
        with pytest.raises(IdempotencyKeyInFlight):
            await first.idempotency_keys.save(mine)

    async with first:
        stored = await first.idempotency_keys.get("key-1")
    assert stored is not None
    assert (stored.locked_until, stored.version) == (None, 2)
