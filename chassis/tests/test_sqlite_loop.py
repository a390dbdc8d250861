"""chassis.sqlite_loop: SQLite statements on the event loop, waiting for the write lock
without holding the loop."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from chassis import Database
from chassis.resilience import deadline
from chassis.sqlite_loop import DRIVER, wait_while_busy


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+{DRIVER}:///{tmp_path / 'loop.db'}")
    async with database.engine.begin() as connection:
        await connection.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
    yield database
    await database.dispose()


async def test_a_database_on_a_souk_loop_url_runs_its_statements_with_the_stdlib_driver(
    database: Database, tmp_path: Path
) -> None:
    assert database.engine.dialect.driver == DRIVER
    async with database.engine.connect() as connection:
        raw = await connection.get_raw_connection()
        assert isinstance(raw.driver_connection, sqlite3.Connection)
    # The default stays aiosqlite's thread until the loop is measured on a quiet machine.
    default = Database(f"sqlite+aiosqlite:///{tmp_path / 'default.db'}")
    try:
        assert default.engine.dialect.driver == "aiosqlite"
    finally:
        await default.dispose()


async def test_wal_foreign_keys_and_a_writer_that_waits_for_the_lock_off_the_loop(
    database: Database, tmp_path: Path
) -> None:
    async with database.engine.connect() as connection:
        journal = (await connection.execute(text("PRAGMA journal_mode"))).scalar()
        busy = (await connection.execute(text("PRAGMA busy_timeout"))).scalar()
        foreign_keys = (await connection.execute(text("PRAGMA foreign_keys"))).scalar()
    assert journal == "wal"
    assert busy == 0  # SQLite's own busy handler would sleep on the event loop
    assert foreign_keys == 1
    # A second writer (another replica) waits for the write lock instead of failing with
    # "database is locked", and the loop runs on while it waits.
    holder = sqlite3.connect(tmp_path / "loop.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    async def write() -> None:
        async with database.engine.begin() as connection:
            await connection.execute(text("INSERT INTO notes (body) VALUES ('waited')"))

    ticker = asyncio.create_task(tick())
    writer = asyncio.create_task(write())
    await asyncio.sleep(0.5)
    assert not writer.done()
    holder.execute("COMMIT")
    holder.close()
    await asyncio.wait_for(writer, 30)
    ticker.cancel()
    assert ticks >= 10  # some 50 were due; a loop held by the waiting writer makes none
    async with database.engine.connect() as connection:
        bodies = (await connection.execute(text("SELECT body FROM notes"))).scalars()
        assert list(bodies) == ["waited"]


async def test_a_statement_past_its_deadline_is_interrupted_on_the_loop_too(
    database: Database,
) -> None:
    endless = text(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000000) "
        "SELECT count(*) FROM n"
    )
    async with database.engine.connect() as connection:
        with deadline.within(0.2), pytest.raises(OperationalError, match="interrupted"):
            await connection.execute(endless)
        await connection.rollback()
        assert (await connection.execute(text("SELECT 1"))).scalar() == 1


async def test_two_writers_of_one_process_both_commit_when_the_first_awaits_mid_transaction(
    database: Database,
) -> None:
    # The first holds SQLite's write lock across an await (a remote call, say); the second
    # asks for it meanwhile. A busy wait that held the loop would never let the first go on
    # to commit: both would wait out the busy timeout and the second would fail.
    first_wrote = asyncio.Event()
    second_trying = asyncio.Event()

    async def first() -> None:
        async with database.sessionmaker() as session:
            await session.execute(text("INSERT INTO notes (body) VALUES ('first')"))
            first_wrote.set()
            await second_trying.wait()
            await asyncio.sleep(0.2)  # the second is waiting for the lock by now
            await session.commit()

    async def second() -> None:
        await first_wrote.wait()
        async with database.sessionmaker() as session:
            second_trying.set()
            await session.execute(text("INSERT INTO notes (body) VALUES ('second')"))
            await session.commit()

    async with asyncio.timeout(10):
        await asyncio.gather(first(), second())

    async with database.engine.connect() as connection:
        bodies = (await connection.execute(text("SELECT body FROM notes ORDER BY id"))).scalars()
        assert list(bodies) == ["first", "second"]


@pytest.fixture
async def impatient(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(
        f"sqlite+{DRIVER}:///{tmp_path / 'impatient.db'}", connect_args={"timeout": 0.3}
    )
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE notes (body TEXT)"))
    yield engine
    await engine.dispose()


async def test_a_writer_gives_up_once_its_busy_timeout_is_spent(
    impatient: AsyncEngine, tmp_path: Path
) -> None:
    holder = sqlite3.connect(tmp_path / "impatient.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(OperationalError, match="database is locked"):
            async with impatient.begin() as connection:
                await connection.execute(text("INSERT INTO notes VALUES ('late')"))
        waited = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert waited >= 0.3
    assert waited < 10  # generous: a loaded machine; the bound is 0.3 s of pauses


def test_only_plain_busy_is_waited_for() -> None:
    calls = 0

    def snapshot_too_old() -> None:
        nonlocal calls
        calls += 1
        error = sqlite3.OperationalError("database is locked")
        error.sqlite_errorcode = 517  # SQLITE_BUSY_SNAPSHOT: trying again cannot help
        raise error

    with pytest.raises(sqlite3.OperationalError):
        wait_while_busy(snapshot_too_old, busy_seconds=5)
    assert calls == 1


def test_a_busy_call_is_made_again_until_it_goes_through() -> None:
    answers = iter([5, 5, None])

    def busy_twice() -> str:
        code = next(answers)
        if code is not None:
            error = sqlite3.OperationalError("database is locked")
            error.sqlite_errorcode = code
            raise error
        return "done"

    assert wait_while_busy(busy_twice, busy_seconds=5) == "done"


async def test_rows_are_read_whole_when_a_select_runs(database: Database, tmp_path: Path) -> None:
    # No statement is left half-stepped, holding a read snapshot of the WAL, while its
    # coroutine awaits: a checkpoint that needs every reader gone goes through.
    async with database.sessionmaker() as session:
        await session.execute(text("INSERT INTO notes (body) VALUES ('a'), ('b'), ('c')"))
        await session.commit()
    async with database.engine.connect() as connection:
        result = await connection.execute(text("SELECT body FROM notes ORDER BY id"))
        with contextlib.closing(sqlite3.connect(tmp_path / "loop.db", timeout=0)) as other:
            busy, _, _ = other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0
        assert result.scalars().all() == ["a", "b", "c"]
