"""The cart storage on a real SQLite database: the migrations, and one row per product."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from bff_mobile.adapters.orm import metadata
from bff_mobile.adapters.unit_of_work import SqlAlchemyUnitOfWork
from bff_mobile.app import MIGRATIONS
from bff_mobile.domain.cart import CartLine
from chassis import Database
from contracts import Money

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from sqlalchemy import Connection

AT = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def line(product_id: str, quantity: int, at: datetime = AT) -> CartLine:
    return CartLine(product_id, f"Product {product_id}", Money(990, "EUR"), quantity, at)


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'bff-mobile.db'}", migrations=MIGRATIONS)
    await database.migrate()
    yield database
    await database.dispose()


@pytest.fixture
def uow(database: Database) -> SqlAlchemyUnitOfWork:
    return SqlAlchemyUnitOfWork(database.sessionmaker)


async def test_the_migrations_build_exactly_the_schema_the_tables_describe(
    database: Database,
) -> None:
    def differences(connection: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(connection), metadata))

    async with database.engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_a_cart_reads_back_oldest_line_first_in_utc(uow: SqlAlchemyUnitOfWork) -> None:
    async with uow:
        await uow.carts.put("c-1", line("p-2", 1, AT + timedelta(minutes=1)))
        await uow.carts.put("c-1", line("p-1", 3))
        await uow.carts.put("c-2", line("p-1", 9))
        await uow.commit()

    async with uow:
        cart = await uow.carts.get("c-1")

    assert cart.lines == [line("p-1", 3), line("p-2", 1, AT + timedelta(minutes=1))]
    assert cart.lines[0].added_at.tzinfo is not None


async def test_putting_a_product_again_replaces_its_line_but_keeps_when_it_was_added(
    uow: SqlAlchemyUnitOfWork,
) -> None:
    async with uow:
        await uow.carts.put("c-1", line("p-1", 1))
        await uow.commit()
    async with uow:
        await uow.carts.put("c-1", line("p-1", 4, AT + timedelta(hours=1)))
        await uow.commit()

    async with uow:
        assert (await uow.carts.get("c-1")).lines == [line("p-1", 4)]


async def test_two_first_puts_of_one_product_at_once_leave_one_line(
    database: Database,
) -> None:
    async def put(quantity: int) -> None:
        async with SqlAlchemyUnitOfWork(database.sessionmaker) as uow:
            await uow.carts.put("c-1", line("p-1", quantity))
            await uow.commit()

    await asyncio.gather(put(1), put(2))

    async with SqlAlchemyUnitOfWork(database.sessionmaker) as uow:
        [only] = (await uow.carts.get("c-1")).lines
    assert only.quantity in {1, 2}


async def test_a_removed_product_is_gone_and_removing_it_again_is_harmless(
    uow: SqlAlchemyUnitOfWork,
) -> None:
    async with uow:
        await uow.carts.put("c-1", line("p-1", 1))
        await uow.commit()
    for _ in range(2):
        async with uow:
            await uow.carts.remove("c-1", "p-1")
            await uow.commit()

    async with uow:
        assert (await uow.carts.get("c-1")).lines == []
