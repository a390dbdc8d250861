"""The SQLAlchemy unit of work: commit persists, leaving without it rolls back, one per entry."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from chassis import Database
from chassis.messaging.tables import outbox
from chassis.unit_of_work import SqlAlchemyUnitOfWork, StorageUnavailableError
from contracts import Money
from contracts.events import Event, ProductCreated, decode, occurred_now

metadata = MetaData()
notes = Table(
    "notes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("text", String(50), nullable=False),
)


class NoteRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, text: str) -> None:
        await self.session.execute(insert(notes).values(text=text))

    async def all(self) -> list[str]:
        return list((await self.session.scalars(select(notes.c.text).order_by(notes.c.id))).all())


class NotesUnitOfWork(SqlAlchemyUnitOfWork):
    notes: NoteRepository

    def open_repositories(self, session: AsyncSession) -> None:
        self.notes = NoteRepository(session)


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'notes.db'}")
    async with database.engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield database
    await database.dispose()


async def stored(database: Database) -> list[str]:
    async with NotesUnitOfWork(database.sessionmaker) as uow:
        return await uow.notes.all()


async def add_then_fail(database: Database, text: str) -> None:
    async with NotesUnitOfWork(database.sessionmaker) as uow:
        await uow.notes.add(text)
        raise RuntimeError("boom")


async def test_what_is_committed_is_stored(database: Database) -> None:
    async with NotesUnitOfWork(database.sessionmaker) as uow:
        await uow.notes.add("kept")
        await uow.commit()

    assert await stored(database) == ["kept"]


async def test_leaving_without_commit_rolls_back(database: Database) -> None:
    async with NotesUnitOfWork(database.sessionmaker) as uow:
        await uow.notes.add("dropped")
        assert await uow.notes.all() == ["dropped"]

    with pytest.raises(RuntimeError, match="boom"):
        await add_then_fail(database, "dropped too")

    assert await stored(database) == []


async def test_each_entry_opens_a_new_transaction_with_new_repositories(
    database: Database,
) -> None:
    uow = NotesUnitOfWork(database.sessionmaker)
    async with uow:
        await uow.notes.add("first")
        first_repository = uow.notes
    async with uow:
        assert uow.notes is not first_repository
        assert uow.notes.session is not first_repository.session
        assert await uow.notes.all() == []
        await uow.notes.add("second")
        await uow.commit()

    assert await stored(database) == ["second"]


async def add_and_commit(uow: NotesUnitOfWork, text: str) -> None:
    async with uow:
        await uow.notes.add(text)
        await uow.commit()


async def test_a_database_locked_by_another_writer_is_storage_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    with sqlite3.connect(path) as setup:
        setup.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text VARCHAR(50) NOT NULL)")
    # A writer that holds the lock, and a database that will not wait long for it.
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}", connect_args={"timeout": 0.1})
    try:
        with pytest.raises(StorageUnavailableError, match="database is locked"):
            await add_and_commit(NotesUnitOfWork(async_sessionmaker(engine)), "waits")
    finally:
        holder.rollback()
        holder.close()
        await engine.dispose()


async def test_a_programming_error_is_not_mistaken_for_unavailable_storage(
    tmp_path: Path,
) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    try:
        with pytest.raises(OperationalError, match="no such table"):
            async with NotesUnitOfWork(async_sessionmaker(engine)) as uow:
                await uow.notes.add("no table yet")
    finally:
        await engine.dispose()


# --- Events of the aggregates written ---------------------------------------------------------


class Shelf:
    """An aggregate that records the events it publishes, as a service's aggregates do."""

    def __init__(self, product_id: str) -> None:
        self.id = product_id
        self.events: list[Event] = []

    def list_product(self, name: str) -> None:
        self.events.append(
            ProductCreated(
                product_id=self.id,
                sku="TEA-MINT-100G",
                name=name,
                category="tea-coffee",
                price=Money(450, "EUR"),
                version=1,
                occurred_at=occurred_now(),
            )
        )


class ShelvesUnitOfWork(NotesUnitOfWork):
    def open_repositories(self, session: AsyncSession) -> None:
        super().open_repositories(session)
        self.shelves: list[Shelf] = []

    def written(self) -> list[Shelf]:
        return self.shelves


async def outbox_rows(database: Database) -> list[tuple[str, str, str, bytes]]:
    async with database.engine.connect() as connection:
        rows = await connection.execute(
            select(outbox.c.topic, outbox.c.key, outbox.c.event_type, outbox.c.payload)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def test_the_events_of_the_aggregates_written_go_to_the_outbox_on_their_topic_and_key(
    database: Database,
) -> None:
    async with database.engine.begin() as connection:
        await connection.run_sync(outbox.metadata.create_all)
    shelf = Shelf("product-7")
    async with ShelvesUnitOfWork(database.sessionmaker) as uow:
        shelf.list_product("Mint tea")
        uow.shelves.append(shelf)
        await uow.commit()

    [(topic, key, event_type, payload)] = await outbox_rows(database)
    assert (topic, key, event_type) == ("catalog", "product-7", "ProductCreated")
    assert decode(event_type, 1, payload) == ProductCreated.from_dict(json.loads(payload))
    assert json.loads(payload)["name"] == "Mint tea"
    assert shelf.events == []  # taken by the unit of work


async def test_the_events_of_a_transaction_left_without_commit_are_not_published(
    database: Database,
) -> None:
    async with database.engine.begin() as connection:
        await connection.run_sync(outbox.metadata.create_all)
    async with ShelvesUnitOfWork(database.sessionmaker) as uow:
        shelf = Shelf("product-8")
        shelf.list_product("Verbena")
        uow.shelves.append(shelf)

    assert await outbox_rows(database) == []
