"""The idempotent inbox: a message delivered twice has its effect once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from chassis import Database
from chassis.messaging import Delivery, Message
from chassis.unit_of_work import SqlAlchemyUnitOfWork

from .databases import messaging_database

accounts = MetaData()
points = Table(
    "points", accounts, Column("customer", String(20), primary_key=True), Column("total", Integer)
)


class PointsUnitOfWork(SqlAlchemyUnitOfWork):
    def open_repositories(self, session: AsyncSession) -> None:
        self.session = session


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with messaging_database(request.param, tmp_path) as database:
        async with database.engine.begin() as connection:
            await connection.run_sync(accounts.create_all)
            await connection.execute(points.insert().values(customer="ada", total=0))
        yield database


def earned(points_earned: int, *, group: str = "loyalty") -> Delivery:
    message = Message(
        topic="orders", key="ada", event_type="OrderConfirmed", payload=str(points_earned).encode()
    )
    return Delivery(message=message, group=group, partition=0)


async def add_points(database: Database, delivery: Delivery, *, pause: float = 0.0) -> None:
    """A handler: credit the points in the message, once."""
    async with PointsUnitOfWork(database.sessionmaker) as uow:
        if await uow.inbox.seen(delivery):
            return
        await uow.session.execute(
            update(points).values(total=points.c.total + int(delivery.message.payload))
        )
        await uow.inbox.record(delivery)
        await asyncio.sleep(pause)
        await uow.commit()


async def total(database: Database) -> int:
    async with database.sessionmaker() as session:
        return int((await session.execute(select(points.c.total))).scalar_one())


async def test_a_redelivered_message_has_no_second_effect(database: Database) -> None:
    delivery = earned(10)

    await add_points(database, delivery)
    await add_points(database, delivery)

    assert await total(database) == 10


async def test_each_group_has_its_own_inbox(database: Database) -> None:
    delivery = earned(10)
    await add_points(database, delivery)

    await add_points(database, Delivery(delivery.message, group="auditing", partition=0))

    assert await total(database) == 20


async def test_an_effect_that_rolls_back_leaves_the_message_unseen(database: Database) -> None:
    delivery = earned(10)

    async def record_then_crash() -> None:
        async with PointsUnitOfWork(database.sessionmaker) as uow:
            await uow.inbox.record(delivery)
            raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError):
        await record_then_crash()

    await add_points(database, delivery)

    assert await total(database) == 10


async def test_two_racing_deliveries_of_one_message_commit_one_effect(database: Database) -> None:
    delivery = earned(10)

    results = await asyncio.gather(
        add_points(database, delivery, pause=0.1),
        add_points(database, delivery, pause=0.1),
        return_exceptions=True,
    )

    assert await total(database) == 10
    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) <= 1, "the loser fails (and is delivered again), the winner commits"
