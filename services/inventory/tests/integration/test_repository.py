"""The SQLAlchemy repositories and unit of work on a real SQLite database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData

from chassis.messaging import tables as messaging_tables
from inventory.adapters.orm import metadata
from inventory.adapters.unit_of_work import SqlAlchemyUnitOfWork
from inventory.domain.errors import ConcurrentChange
from inventory.domain.model import Reservation, ReservationLine, ReservationStatus, StockItem

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from chassis import Database

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
SAFFRON = "SPC-SAFFRON-2G"
RUG = "RUG-ZANAFI-90X140"


async def stock_up(uow: SqlAlchemyUnitOfWork, saffron: int = 10, rugs: int = 3) -> None:
    async with uow:
        await uow.stock.add(StockItem(sku=SAFFRON, on_hand=saffron))
        await uow.stock.add(StockItem(sku=RUG, on_hand=rugs))
        await uow.commit()


async def place(
    uow: SqlAlchemyUnitOfWork, reservation_id: str = "order-1", minutes: int = 15
) -> Reservation:
    async with uow:
        stock = await uow.stock.get_many([SAFFRON, RUG])
        reservation = Reservation.place(
            id=reservation_id,
            lines=(ReservationLine(SAFFRON, 2), ReservationLine(RUG, 1)),
            expires_at=NOW + timedelta(minutes=minutes),
            stock=stock,
        )
        await uow.reservations.add(reservation)
        for item in stock.values():
            await uow.stock.save(item)
        await uow.commit()
    return reservation


async def counts(uow: SqlAlchemyUnitOfWork) -> dict[str, tuple[int, int]]:
    async with uow:
        stock = await uow.stock.get_many([SAFFRON, RUG])
    return {sku: (item.on_hand, item.reserved) for sku, item in stock.items()}


async def test_the_migrations_build_exactly_the_schema_the_tables_describe(
    database: Database,
) -> None:
    """The inventory's tables, and the chassis's messaging tables."""
    described = MetaData()
    for table in (*metadata.tables.values(), *messaging_tables.metadata.tables.values()):
        table.to_metadata(described)

    def differences(connection: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(connection), described))

    async with database.engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_a_placed_reservation_reads_back_with_its_lines_status_and_expiry(
    uow: SqlAlchemyUnitOfWork,
) -> None:
    await stock_up(uow)
    placed = await place(uow)

    async with uow:
        stored = await uow.reservations.get("order-1")

    assert stored is not None
    assert (stored.id, stored.lines, stored.status, stored.expires_at) == (
        "order-1",
        placed.lines,
        ReservationStatus.RESERVED,
        NOW + timedelta(minutes=15),
    )
    assert await counts(uow) == {SAFFRON: (10, 2), RUG: (3, 1)}


async def test_what_is_not_committed_is_rolled_back(uow: SqlAlchemyUnitOfWork) -> None:
    async with uow:
        await uow.stock.add(StockItem(sku=SAFFRON, on_hand=10))

    async with uow:
        assert await uow.stock.get(SAFFRON) is None


async def test_changes_to_one_item_from_two_transactions_add_up(database: Database) -> None:
    first, second = (SqlAlchemyUnitOfWork(database.sessionmaker) for _ in range(2))
    await stock_up(first)

    async with first, second:
        mine, theirs = await first.stock.get(SAFFRON), await second.stock.get(SAFFRON)
        assert mine is not None
        assert theirs is not None
        theirs.hold(4)
        await second.stock.save(theirs)
        await second.commit()
        mine.add(5)
        await first.stock.save(mine)
        await first.commit()

    assert (mine.on_hand, mine.reserved) == (15, 4)
    assert (await counts(first))[SAFFRON] == (15, 4)


async def test_a_hold_that_no_longer_fits_what_is_available_is_refused(
    database: Database,
) -> None:
    first, second = (SqlAlchemyUnitOfWork(database.sessionmaker) for _ in range(2))
    await stock_up(first, rugs=3)

    async with first, second:
        mine, theirs = await first.stock.get(RUG), await second.stock.get(RUG)
        assert mine is not None
        assert theirs is not None
        theirs.hold(2)
        await second.stock.save(theirs)
        await second.commit()
        mine.hold(2)
        with pytest.raises(ConcurrentChange):
            await first.stock.save(mine)

    assert (await counts(first))[RUG] == (3, 2)


async def test_a_second_reservation_with_the_same_id_is_refused_by_the_database(
    uow: SqlAlchemyUnitOfWork,
) -> None:
    await stock_up(uow)
    await place(uow)

    with pytest.raises(ConcurrentChange):
        await place(uow)

    assert await counts(uow) == {SAFFRON: (10, 2), RUG: (3, 1)}


async def test_a_status_change_over_a_concurrent_one_is_refused(database: Database) -> None:
    first, second = (SqlAlchemyUnitOfWork(database.sessionmaker) for _ in range(2))
    await stock_up(first)
    await place(first)

    async with first, second:
        mine, theirs = (
            await first.reservations.get("order-1"),
            await second.reservations.get("order-1"),
        )
        assert mine is not None
        assert theirs is not None
        theirs.release(await second.stock.get_many([SAFFRON, RUG]))
        await second.reservations.save(theirs)
        await second.commit()
        mine.commit(NOW, await first.stock.get_many([SAFFRON, RUG]))
        with pytest.raises(ConcurrentChange):
            await first.reservations.save(mine)


async def test_overdue_lists_reserved_reservations_past_their_expiry_oldest_first(
    uow: SqlAlchemyUnitOfWork,
) -> None:
    await stock_up(uow, saffron=100, rugs=100)
    for reservation_id, minutes in [("later", 20), ("soon", 5), ("sooner", 1), ("future", 60)]:
        await place(uow, reservation_id, minutes)

    async with uow:
        overdue = await uow.reservations.overdue(NOW + timedelta(minutes=20), limit=10)
        first_two = await uow.reservations.overdue(NOW + timedelta(minutes=20), limit=2)

    assert overdue == ["sooner", "soon", "later"]
    assert first_two == ["sooner", "soon"]
