"""Database: Alembic migrations at start-up under a cross-process lock, and readiness."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError, OperationalError

from chassis import Database, ServiceSettings, db
from chassis.resilience import deadline
from souk.testing import scratch_database

MakeDb = Callable[..., Database]

_MIGRATE_SCRIPT = """\
import asyncio
import sys
import time
from pathlib import Path

from chassis.db import Database


async def main() -> None:
    url, migrations, ready, go = sys.argv[1:5]
    Path(ready).touch()
    while not Path(go).exists():
        time.sleep(0.01)
    database = Database(url, migrations=Path(migrations))
    try:
        await database.migrate()
        await database.check()
    finally:
        await database.dispose()


asyncio.run(main())
"""


@pytest.fixture
async def make_db() -> AsyncIterator[MakeDb]:
    """``make_db(url, migrations=...)``; every Database made is disposed afterwards."""
    made: list[Database] = []

    def make(url: str, *, migrations: Path | None = None) -> Database:
        database = Database(url, migrations=migrations)
        made.append(database)
        return database

    yield make
    for database in made:
        await database.dispose()


@pytest.fixture
def db_file(tmp_path: Path) -> Path:
    return tmp_path / "db" / "demo.db"


@pytest.fixture
def url(db_file: Path) -> str:
    return f"sqlite+aiosqlite:///{db_file}"


def _query(db_file: Path, sql: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(db_file)) as connection:
        return connection.execute(sql).fetchall()


async def test_migrate_applies_the_migrations_and_check_passes(
    make_db: MakeDb, url: str, db_file: Path, migrations: Path
) -> None:
    database = make_db(url, migrations=migrations)

    await database.migrate()
    await database.check()

    assert database.head_revision() == "0001"
    assert _query(db_file, "SELECT name FROM things") == [("seed",)]
    assert _query(db_file, "SELECT version_num FROM alembic_version") == [("0001",)]


async def test_migrating_twice_applies_the_schema_once(
    make_db: MakeDb, url: str, db_file: Path, migrations: Path
) -> None:
    database = make_db(url, migrations=migrations)

    await database.migrate()
    await database.migrate()

    assert _query(db_file, "SELECT count(*) FROM things") == [(1,)]


async def test_a_schema_at_head_is_left_alone_without_alembic(
    make_db: MakeDb, url: str, db_file: Path, migrations: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_db(url, migrations=migrations).migrate()

    def upgrade(_: Database, __: Connection) -> None:
        raise AssertionError("Alembic ran on a schema already at head")

    monkeypatch.setattr(Database, "_upgrade", upgrade)
    restarted = make_db(url, migrations=migrations)
    await restarted.migrate()
    await restarted.check()

    assert _query(db_file, "SELECT version_num FROM alembic_version") == [("0001",)]


def test_a_process_starting_on_a_migrated_database_never_imports_alembic(
    url: str, migrations: Path
) -> None:
    script = f"""\
import asyncio, sys
from pathlib import Path
from chassis.db import Database

async def main():
    database = Database({url!r}, migrations=Path({str(migrations)!r}))
    try:
        await database.migrate()
        await database.check()
    finally:
        await database.dispose()
    print("alembic" in sys.modules)

asyncio.run(main())
"""
    first = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    second = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )

    assert (first.stdout.split(), second.stdout.split()) == (["True"], ["False"])


def test_the_head_is_read_from_the_scripts_and_left_to_alembic_when_not_plain(
    migrations: Path, add_revision: Callable[[str, str], None]
) -> None:
    assert db._head_of_scripts(migrations) == "0001"
    add_revision("0002", "0001")
    assert db._head_of_scripts(migrations) == "0002"
    add_revision("0003", "0001")  # a branch: two heads
    assert db._head_of_scripts(migrations) is None
    (migrations / "versions" / "0003_more.py").write_text("revision = compute()\n")
    assert db._head_of_scripts(migrations) is None


async def test_check_fails_before_any_migration(
    make_db: MakeDb, url: str, migrations: Path
) -> None:
    database = make_db(url, migrations=migrations)

    with pytest.raises(RuntimeError, match="schema at revision None, expected 0001"):
        await database.check()


async def test_check_fails_when_the_schema_is_behind_head_until_migrated_again(
    make_db: MakeDb, url: str, db_file: Path, migrations: Path, add_revision
) -> None:
    database = make_db(url, migrations=migrations)
    await database.migrate()

    add_revision("0002", "0001")

    with pytest.raises(RuntimeError, match="schema at revision 0001, expected 0002"):
        await database.check()
    await database.migrate()
    await database.check()
    columns = [row[1] for row in _query(db_file, "PRAGMA table_info(things)")]
    assert "note_0002" in columns


async def test_a_database_without_migrations_checks_connectivity_only(
    make_db: MakeDb, url: str
) -> None:
    database = make_db(url)

    await database.check()
    with pytest.raises(RuntimeError, match="without a migrations directory"):
        await database.migrate()


async def test_sqlite_connections_use_wal_a_busy_timeout_and_foreign_keys(
    make_db: MakeDb, url: str, db_file: Path
) -> None:
    database = make_db(url)

    async with database.engine.connect() as connection:
        journal = (await connection.execute(text("PRAGMA journal_mode"))).scalar()
        busy = (await connection.execute(text("PRAGMA busy_timeout"))).scalar()
        foreign_keys = (await connection.execute(text("PRAGMA foreign_keys"))).scalar()

    assert journal == "wal"
    assert busy == 30000
    assert foreign_keys == 1
    # WAL is a property of the file, so every other process sees it too.
    assert _query(db_file, "PRAGMA journal_mode") == [("wal",)]


# Counts to 10^8 on SQLite's virtual machine: some 20 s of CPU unless something stops it.
_ENDLESS = text(
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000000) "
    "SELECT count(*) FROM n"
)


async def test_a_statement_still_running_when_the_deadline_passes_is_interrupted(
    make_db: MakeDb, url: str
) -> None:
    database = make_db(url)

    async with database.engine.connect() as connection:
        with deadline.within(0.2), pytest.raises(OperationalError, match="interrupted"):
            await connection.execute(_ENDLESS)
        # Without a deadline the same connection works on (the bound is per statement).
        await connection.rollback()
        assert (await connection.execute(text("SELECT 1"))).scalar() == 1


async def test_a_statement_under_a_deadline_not_yet_passed_runs_to_its_end(
    make_db: MakeDb, url: str
) -> None:
    database = make_db(url)
    small = text(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) "
        "SELECT count(*) FROM n"
    )

    async with database.engine.connect() as connection:
        with deadline.within(60):
            assert (await connection.execute(small)).scalar() == 1000


async def test_a_write_waiting_for_the_lock_gives_up_when_the_deadline_passes(
    make_db: MakeDb, url: str, db_file: Path
) -> None:
    database = make_db(url)
    async with database.engine.begin() as connection:
        await connection.execute(text("CREATE TABLE things (name TEXT)"))
    # Another connection (another replica, say) holds the write lock until told otherwise.
    holder = sqlite3.connect(db_file, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        async with database.engine.connect() as connection:
            started = asyncio.get_running_loop().time()
            with (
                deadline.within(0.3),
                pytest.raises(OperationalError, match="database is locked"),
            ):
                await connection.execute(text("INSERT INTO things VALUES ('waits')"))
            waited = asyncio.get_running_loop().time() - started
            await connection.rollback()
            # Well under the 30 s busy timeout a write without a deadline waits (a generous
            # bound: CI's 2 cores are loaded); and not before the deadline either.
            assert 0.25 <= waited < 10, waited
            holder.execute("COMMIT")
            # The next write without a deadline waits the whole 30 s again if it must.
            await connection.execute(text("INSERT INTO things VALUES ('after')"))
            await connection.commit()
            busy = (await connection.execute(text("PRAGMA busy_timeout"))).scalar()
    finally:
        holder.close()
    assert busy == db.SQLITE_BUSY_TIMEOUT_MS
    assert _query(db_file, "SELECT name FROM things") == [("after",)]


async def test_a_write_under_a_deadline_waits_for_the_lock_while_time_is_left(
    make_db: MakeDb, url: str, db_file: Path
) -> None:
    database = make_db(url)
    async with database.engine.begin() as connection:
        await connection.execute(text("CREATE TABLE things (name TEXT)"))
    holder = sqlite3.connect(db_file, isolation_level=None, check_same_thread=False)
    try:
        holder.execute("BEGIN IMMEDIATE")
        # The lock is let go 0.3 s in; the deadline is 30 s away: the write waits and works.
        releasing = asyncio.get_running_loop().call_later(0.3, holder.execute, "COMMIT")
        async with database.engine.begin() as connection:
            with deadline.within(30):
                await connection.execute(text("INSERT INTO things VALUES ('waited')"))
        releasing.cancel()
    finally:
        holder.close()
    assert _query(db_file, "SELECT name FROM things") == [("waited",)]


@pytest.fixture
async def postgres_url(tmp_path: Path) -> AsyncIterator[str]:
    async with scratch_database("postgres", tmp_path, "deadline") as url:
        yield url


async def test_a_postgres_statement_with_200_ms_left_is_ended_by_the_server(
    make_db: MakeDb, postgres_url: str
) -> None:
    database = make_db(postgres_url)

    async with database.engine.connect() as connection:
        # No asyncio timeout here: only the server's statement timeout can end it early.
        with deadline.within(0.2), pytest.raises(DBAPIError, match="statement timeout"):
            await connection.execute(text("SELECT pg_sleep(2)"))
        await connection.rollback()
        # The next transaction, without a deadline, has no bound (SET LOCAL ended with it).
        assert (await connection.execute(text("SHOW statement_timeout"))).scalar() == "0"


async def test_a_postgres_transaction_gets_what_is_left_of_the_deadline_and_no_more(
    make_db: MakeDb, postgres_url: str
) -> None:
    database = make_db(postgres_url)

    async with database.sessionmaker() as session:
        with deadline.within(30):
            async with session.begin():
                bound = (await session.execute(text("SHOW statement_timeout"))).scalar()
                assert (await session.execute(text("SELECT pg_sleep(0.05)"))).all()
        async with session.begin():
            unbound = (await session.execute(text("SHOW statement_timeout"))).scalar()

    assert isinstance(bound, str)
    assert bound.endswith("s")
    seconds = int(bound.removesuffix("ms")) / 1000 if bound.endswith("ms") else int(bound[:-1])
    assert 0 < seconds <= 30
    assert unbound == "0"


async def test_a_postgres_statement_gets_what_is_left_when_it_starts_not_at_begin(
    make_db: MakeDb, postgres_url: str
) -> None:
    database = make_db(postgres_url)

    async with database.sessionmaker() as session:
        with deadline.within(6):
            async with session.begin():
                first = (await session.execute(text("SHOW statement_timeout"))).scalar()
                # Quick statements keep the timeout the transaction began with: no round trip.
                again = (await session.execute(text("SHOW statement_timeout"))).scalar()
                await session.execute(text("SELECT pg_sleep(3)"))
                # About 3 s are left: a 5 s sleep fits the 6 s the transaction began with,
                # but not the deadline, so the server ends it.
                with pytest.raises(DBAPIError, match="statement timeout"):
                    await session.execute(text("SELECT pg_sleep(5)"))

    assert first == again


async def test_a_postgres_read_in_autocommit_sends_no_statement_timeout(
    make_db: MakeDb, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = make_db(postgres_url)
    sent: list[float] = []
    setting = db._set_statement_timeout  # counting the round trips it makes
    monkeypatch.setattr(
        db, "_set_statement_timeout", lambda c, left: (sent.append(left), setting(c, left))
    )

    with deadline.within(30):
        found = await database.read(lambda c: c.execute(text("SELECT 1")).scalar())
        async with database.sessionmaker() as session, session.begin():
            await session.execute(text("SELECT 1"))

    assert found == 1
    # SET LOCAL outside a transaction does nothing (PostgreSQL only warns): not sent for the
    # read, sent once for the transaction.
    assert len(sent) == 1


async def test_sessions_read_and_write_the_database(
    make_db: MakeDb, url: str, migrations: Path
) -> None:
    database = make_db(url, migrations=migrations)
    await database.migrate()

    async with database.sessionmaker() as session, session.begin():
        await session.execute(text("INSERT INTO things (name) VALUES ('added')"))
    async with database.sessionmaker() as session:
        names = (await session.execute(text("SELECT name FROM things ORDER BY id"))).scalars()

        assert list(names) == ["seed", "added"]


def _names(connection: Connection) -> list[str]:
    return list(connection.execute(text("SELECT name FROM things ORDER BY id")).scalars())


@pytest.fixture(params=["sqlite", "postgres"])
async def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database two Database objects (two replicas) can share, on each backend."""
    async with scratch_database(request.param, tmp_path, "reads") as url:
        yield url


async def test_a_read_sees_what_another_replica_committed_a_moment_before(
    make_db: MakeDb, shared_url: str, migrations: Path
) -> None:
    reader, writer = make_db(shared_url, migrations=migrations), make_db(shared_url)
    await reader.migrate()
    assert await reader.read(_names) == ["seed"]

    async with writer.sessionmaker() as session, session.begin():
        await session.execute(text("INSERT INTO things (name) VALUES ('added')"))

    # Nothing of the earlier read (no snapshot, no cache) hides the commit.
    assert await reader.read(_names) == ["seed", "added"]


async def test_a_read_on_a_sqlite_file_cannot_write(
    make_db: MakeDb, url: str, migrations: Path
) -> None:
    database = make_db(url, migrations=migrations)
    await database.migrate()

    def insert(connection: Connection) -> None:
        connection.execute(text("INSERT INTO things (name) VALUES ('sneaked in')"))

    with pytest.raises(OperationalError, match="readonly"):
        await database.read(insert)
    assert await database.read(_names) == ["seed"]


async def test_a_read_on_an_in_memory_database_uses_its_one_connection(
    make_db: MakeDb, migrations: Path
) -> None:
    database = make_db("sqlite+aiosqlite://", migrations=migrations)
    await database.migrate()

    assert await database.read(_names) == ["seed"]


async def test_two_databases_on_one_file_migrating_concurrently_apply_the_schema_once(
    make_db: MakeDb,
    url: str,
    db_file: Path,
    migrations: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHASSIS_TEST_MIGRATION_DELAY", "0.2")
    first = make_db(url, migrations=migrations)
    second = make_db(url, migrations=migrations)

    await asyncio.wait_for(asyncio.gather(first.migrate(), second.migrate()), timeout=30)

    await first.check()
    await second.check()
    assert _query(db_file, "SELECT count(*) FROM things") == [(1,)]
    assert _query(db_file, "SELECT version_num FROM alembic_version") == [("0001",)]


def test_two_processes_migrating_one_file_at_once_both_succeed_and_apply_it_once(
    url: str, db_file: Path, migrations: Path, spawn, wait_for_file
) -> None:
    workdir = migrations.parent  # the test's tmp_path, where spawn writes its logs
    script = workdir / "migrate.py"
    script.write_text(_MIGRATE_SCRIPT)
    go = workdir / "go"
    ready = [workdir / f"ready-{n}" for n in range(2)]
    env = {"CHASSIS_TEST_MIGRATION_DELAY": "0.3"}
    workers = [spawn(script, url, str(migrations), str(flag), str(go), env=env) for flag in ready]
    for flag, worker in zip(ready, workers, strict=True):
        wait_for_file(flag, worker)

    go.touch()  # both processes are imported and waiting: release them together

    codes = [worker.wait(timeout=30) for worker in workers]
    logs = [p.read_text() for p in sorted(workdir.glob("migrate-*.log"))]
    assert codes == [0, 0], logs
    assert _query(db_file, "SELECT count(*) FROM things") == [(1,)]
    assert _query(db_file, "SELECT version_num FROM alembic_version") == [("0001",)]


@pytest.mark.parametrize(
    ("in_memory", "same_object"),
    [(False, False), (False, True), (True, True)],
    ids=["two-databases-on-a-file", "one-database-on-a-file", "one-in-memory-database"],
)
async def test_the_startup_lock_makes_a_second_holder_wait_until_the_first_releases(
    make_db: MakeDb, url: str, in_memory: bool, same_object: bool
) -> None:
    if in_memory:
        url = "sqlite+aiosqlite://"
    first = make_db(url)
    second = first if same_object else make_db(url)
    order: list[str] = []
    first_holds = asyncio.Event()
    second_is_waiting = asyncio.Event()

    async def hold_first() -> None:
        async with first.startup_lock():
            order.append("first acquired")
            first_holds.set()
            await second_is_waiting.wait()
            # Several of the lock's polling rounds: room for the second to (wrongly) get in.
            for _ in range(8):
                await asyncio.sleep(0.025)
            order.append("first releasing")

    async def then_second() -> None:
        await first_holds.wait()
        second_is_waiting.set()
        async with second.startup_lock():
            order.append("second acquired")

    await asyncio.wait_for(asyncio.gather(hold_first(), then_second()), timeout=10)

    assert order == ["first acquired", "first releasing", "second acquired"]


async def test_waiting_too_long_for_the_startup_lock_raises(
    make_db: MakeDb, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "STARTUP_LOCK_TIMEOUT_SECONDS", 0.1)
    first, second = make_db(url), make_db(url)

    async with first.startup_lock():
        with pytest.raises(db.StartupLockTimeoutError, match="held for over"):
            await asyncio.wait_for(second.startup_lock().__aenter__(), timeout=10)

    async with second.startup_lock():  # released, so free again
        pass


def test_an_app_with_migrations_migrates_at_start_up_and_checks_the_database_for_readiness(
    tmp_path: Path, migrations: Path, make_app: Callable[..., FastAPI]
) -> None:
    settings = ServiceSettings(service="demo", instance="demo-1", data_dir=tmp_path / "state")
    seen_in_hook: list[list[tuple[Any, ...]]] = []

    async def after_migrations(app: FastAPI) -> None:
        async with app.state.database.engine.connect() as connection:
            result = await connection.execute(text("SELECT name FROM things"))
            seen_in_hook.append([tuple(row) for row in result])

    app = make_app(settings=settings, migrations=migrations, on_startup=[after_migrations])

    with TestClient(app) as client:
        database = app.state.database
        response = client.get("/readyz")

    assert isinstance(database, Database)
    assert database.url.database == str((tmp_path / "state" / "demo.db").resolve())
    assert seen_in_hook == [[("seed",)]]
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok"}


def test_an_app_whose_schema_falls_behind_head_is_not_ready(
    tmp_path: Path, migrations: Path, add_revision, make_app: Callable[..., FastAPI]
) -> None:
    settings = ServiceSettings(service="demo", instance="demo-1", data_dir=tmp_path / "state")
    app = make_app(settings=settings, migrations=migrations)

    with TestClient(app) as client:
        add_revision("0002", "0001")
        response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"] == {
        "database": "RuntimeError: schema at revision 0001, expected 0002"
    }


def test_the_alembic_command_without_the_chassis_connection_raises_a_clear_error(
    tmp_path: Path, migrations: Path
) -> None:
    config = Config()
    config.set_main_option("script_location", str(migrations))
    config.set_main_option("sqlalchemy.url", f"sqlite:///{tmp_path / 'cli.db'}")

    with pytest.raises(RuntimeError, match=r"chassis\.Database\.migrate\(\)"):
        command.upgrade(config, "head")
