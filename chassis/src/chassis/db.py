"""Async SQLAlchemy sessions and Alembic migrations applied at start-up.

Several replicas of a service may start at once against one database, so migrations
(and any other start-up work that writes, such as seeding) run under a cross-process
lock: a lock file beside a SQLite database, an advisory lock on PostgreSQL.

Alembic is imported only when a migration is due: the newest revision is read from the
scripts' ``revision``/``down_revision`` lines, and a schema already there is left alone.
Alembic and the SQLAlchemy dialects it loads cost every process ~1 s and several MB.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import fcntl
import math
import os
import re
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, TypeVar

from sqlalchemy import DateTime, TypeDecorator, create_engine, event, inspect, make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import StaticPool
from sqlalchemy.util import await_

from chassis.resilience import deadline
from chassis.sqlite_loop import DRIVER as SQLITE_ON_THE_LOOP
from chassis.tracing import trace_statements

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping

    from alembic.config import Config
    from sqlalchemy import Connection, Dialect, Engine, MetaData

T = TypeVar("T")

STARTUP_LOCK_TIMEOUT_SECONDS = 120.0
# How long a SQLite write waits for another connection's write lock (another replica, the
# outbox relay) before "database is locked"; less when the request's deadline comes sooner.
SQLITE_BUSY_TIMEOUT_MS: Final = 30_000

# A service's ``MetaData(naming_convention=NAMING_CONVENTION)`` names every constraint, so its
# migrations can refer to them on every backend (SQLite included).
NAMING_CONVENTION: Final[Mapping[str, str]] = MappingProxyType(
    {
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class StartupLockTimeoutError(TimeoutError):
    """Another process held the start-up lock for too long."""


class Database:
    """One service's database: engine, sessions, migrations and the start-up lock."""

    def __init__(self, url: str, *, migrations: Path | None = None) -> None:
        self.url = make_url(url)
        self.migrations = migrations
        self.backend = self.url.get_backend_name()
        self._lock_path: Path | None = None
        self._process_lock = asyncio.Lock()
        self._head: tuple[str | None] | None = None  # cached once read: (revision,)
        self._reader: Engine | None = None
        engine_args: dict[str, Any] = {}
        # ``sqlite+aiosqlite`` (the default): a worker thread per connection.
        # ``sqlite+souk_loop``: statements on the event loop, no thread hand-offs
        # (chassis.sqlite_loop; opt-in until measured on a quiet machine, ADR 14).
        on_the_loop = self.url.get_driver_name() == SQLITE_ON_THE_LOOP
        if self.backend == "sqlite":
            database = self.url.database or ":memory:"
            if database == ":memory:" or database.startswith("file:"):
                engine_args["poolclass"] = StaticPool
            else:
                path = Path(database)
                path.parent.mkdir(parents=True, exist_ok=True)
                self._lock_path = path.with_name(path.name + ".lock")
                self._reader = _sqlite_reader(path)
            engine_args["connect_args"] = {"timeout": 30}
        else:
            # Replicas x services share one server's connection limit (100 by default).
            engine_args.update(pool_pre_ping=True, pool_size=5, max_overflow=5)
        self.engine = create_async_engine(self.url, **engine_args)
        trace_statements(self.engine)
        if self.backend == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            if not on_the_loop:  # SQLite's busy handler sleeps in aiosqlite's thread
                event.listen(self.engine.sync_engine, "connect", _sqlite_busy_timeout)
            _bound_sqlite_statements_by_the_deadline(self.engine.sync_engine)
        elif self.backend == "postgresql":
            _bound_postgres_statements_by_the_deadline(self.engine.sync_engine)
        self.sessionmaker: async_sessionmaker[AsyncSession] = async_sessionmaker(
            self.engine, expire_on_commit=False
        )

    @contextlib.asynccontextmanager
    async def startup_lock(self) -> AsyncIterator[None]:
        """Hold a lock shared by every process using this database (not re-entrant)."""
        async with self._process_lock:
            if self._lock_path is not None:
                async with _file_lock(self._lock_path):
                    yield
            elif self.backend == "postgresql":
                async with self.engine.connect() as connection:
                    # One key per database and role: services sharing a database (each in
                    # its own schema) do not wait for each other.
                    key = zlib.crc32(f"souk:{self.url.database}:{self.url.username}".encode())
                    await connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
                    try:
                        yield
                    finally:
                        await connection.execute(
                            text("SELECT pg_advisory_unlock(:key)"), {"key": key}
                        )
            else:
                yield

    async def migrate(self) -> None:
        """Upgrade the schema to the newest revision, one process at a time.

        A schema already at the newest revision of the scripts (every start but the first
        after a release) is left as it is without loading Alembic.
        """
        async with self.startup_lock():
            head = _head_of_scripts(self.migrations) if self.migrations is not None else None
            if head is not None and await self._is_at(head):
                return
            async with self.engine.begin() as connection:
                await connection.run_sync(self._upgrade)

    async def check(self) -> None:
        """Readiness: the database answers and its schema is at the newest revision."""
        if self.migrations is None:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            return
        current = await self.current_revision()
        head = self.head_revision()
        if current != head:
            raise RuntimeError(f"schema at revision {current}, expected {head}")

    async def current_revision(self) -> str | None:
        """The revision the schema is at (None before the first migration).

        One plain query (on SQLite's read path: no thread hand-off), since readiness probes
        run every second; the table is inspected only when that query fails, so a database
        without it reads as None and one that does not answer raises.
        """
        try:
            return await self.read(_version_num)
        except DBAPIError:
            pass
        async with self.engine.connect() as connection:
            if not await connection.run_sync(lambda c: inspect(c).has_table("alembic_version")):
                return None
            return (
                await connection.execute(text("SELECT version_num FROM alembic_version"))
            ).scalar_one_or_none()

    def head_revision(self) -> str | None:
        """The newest revision among the migration scripts (read from disk once)."""
        if self._head is None:
            head = _head_of_scripts(self.migrations) if self.migrations is not None else None
            if head is None:  # not a chain read without Alembic (or no migrations): ask it
                from alembic.script import ScriptDirectory  # noqa: PLC0415 - only then

                head = ScriptDirectory.from_config(self._alembic_config()).get_current_head()
            self._head = (head,)
        return self._head[0]

    async def _is_at(self, revision: str) -> bool:
        """Whether the schema is at ``revision`` (False when that cannot be told)."""
        try:
            return await self.current_revision() == revision
        except Exception:  # noqa: BLE001 - Alembic's upgrade will say what is wrong
            return False

    async def read(self, query: Callable[[Connection], T]) -> T:
        """``query(connection)`` in one go: Core statements, no ORM session, nothing kept open.

        On a SQLite file the query runs right here, on the event loop, over a stdlib sqlite3
        connection that may only read: a read by key takes tens of microseconds, less than
        the thread hand-offs aiosqlite makes for every statement (and every cursor, fetch and
        rollback). WAL readers never wait for the writer. Elsewhere the query runs on the
        async engine's connection in autocommit (asyncpg awaits natively: no thread at all),
        so several statements of one query are not one snapshot.
        """
        if self._reader is not None:
            with self._reader.connect() as connection:
                return query(connection)
        # Autocommit: no BEGIN and ROLLBACK around a read, two round trips of five fewer.
        async with self.engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            return await connection.run_sync(query)

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._reader is not None:
            self._reader.dispose()

    def _alembic_config(self, connection: Connection | None = None) -> Config:
        if self.migrations is None:
            raise RuntimeError("this database was created without a migrations directory")
        from alembic.config import Config  # noqa: PLC0415 - Alembic only when it is needed

        config = Config()
        config.set_main_option("script_location", str(self.migrations))
        config.attributes["connection"] = connection
        return config

    def _upgrade(self, connection: Connection) -> None:
        from alembic import command  # noqa: PLC0415 - Alembic only when a migration is due

        command.upgrade(self._alembic_config(connection), "head")


def _version_num(connection: Connection) -> str | None:
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()


# Alembic's own rule for which files in versions/ are revisions (alembic.script.base).
_REVISION_FILE = re.compile(r"(?!\.\#|__init__)(.*\.py)$")


def _head_of_scripts(migrations: Path) -> str | None:
    """The one head of ``migrations/versions``, read from each script's ``revision`` and
    ``down_revision`` literals without importing anything; None when that is not plain
    (no scripts, several heads, a revision that is not a literal): Alembic decides then."""
    revisions: set[str] = set()
    parents: set[str] = set()
    try:
        paths = [p for p in (migrations / "versions").iterdir() if _REVISION_FILE.match(p.name)]
        for path in paths:
            found = _revision_literals(ast.parse(path.read_bytes(), filename=str(path)))
            revision, down = found.get("revision"), found.get("down_revision")
            if not isinstance(revision, str):
                return None
            revisions.add(revision)
            downs = down if isinstance(down, tuple) else (down,)
            if not all(d is None or isinstance(d, str) for d in downs):
                return None
            parents.update(d for d in downs if d is not None)
    except (OSError, SyntaxError, ValueError):
        return None
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _revision_literals(module: ast.Module) -> dict[str, object]:
    found: dict[str, object] = {}
    for node in module.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
            found[target.id] = ast.literal_eval(value)
    return found


def run_migrations(target_metadata: MetaData) -> None:
    """The body of a service's ``migrations/env.py``: migrate on the chassis's connection."""
    from alembic import context  # noqa: PLC0415 - only importable while Alembic runs env.py

    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "Souk applies migrations at start-up through chassis.Database.migrate(); "
            "run the service (or its tests) rather than the alembic command."
        )
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _sqlite_busy_timeout(dbapi_connection: Any, _: Any) -> None:
    # A second writer (another replica) waits instead of failing with "database is locked".
    # Not on chassis.sqlite_loop's connections: there the handler would sleep on the event
    # loop, and the dialect waits instead, giving the loop back (busy_timeout stays 0).
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    # WAL lets readers work while a writer commits.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class _StatementDeadline:
    """When the statement running on one SQLite connection must stop (monotonic seconds),
    and how long (ms) the connection's writes wait for the write lock now."""

    __slots__ = ("at", "busy_ms")

    def __init__(self) -> None:
        self.at: float | None = None
        # The connection's busy timeout now; None on chassis.sqlite_loop's connections,
        # whose busy handler stays off (the dialect waits for the lock, giving the loop back).
        self.busy_ms: int | None = SQLITE_BUSY_TIMEOUT_MS

    def passed(self) -> int:
        # SQLite's progress handler, on the statement's thread: non-zero interrupts it.
        return int(self.at is not None and time.monotonic() > self.at)


_DEADLINE_ATTRIBUTE: Final = "_souk_statement_deadline"


def _bound_sqlite_statements_by_the_deadline(engine: Engine) -> None:
    """Interrupt a statement still running when the request's deadline passes.

    Cancelling the awaiting coroutine (``asyncio.timeout``) does not stop a SQLite statement:
    it runs on (in aiosqlite's thread, or holding the loop with chassis.sqlite_loop), working
    for a caller that has given up. A progress
    handler on each connection checks the deadline every 10 000 virtual-machine steps
    and interrupts it (``sqlite3.OperationalError: interrupted``; the transaction is rolled
    back). PostgreSQL's own statement timeout does it there
    (:func:`_bound_postgres_statements_by_the_deadline`).

    The progress handler does not run while a write waits for another connection's write
    lock: SQLite's busy handler sleeps and retries for ``busy_timeout``. So the first write
    of each transaction (where Python's sqlite3 begins it and the lock is taken; later
    statements hold it) lowers the connection's busy timeout to what is left of the
    deadline, and a write without a deadline puts the 30 s back (:func:`_busy_timeout_for`).
    """
    event.listen(engine, "connect", _install_progress_handler)
    event.listen(engine, "before_cursor_execute", _statement_deadline_from_context)
    event.listen(engine, "after_cursor_execute", _statement_deadline_cleared)
    event.listen(engine, "handle_error", _statement_deadline_cleared_on_error)


# The connection's info key: the statement timeout (s) its transaction has now, if any.
_PG_TIMEOUT: Final = "souk_statement_timeout"
# How far past the deadline a statement may be let run before the timeout is set again: a
# fraction of what is left (at least 50 ms), so quick statements cost no round trip more.
_PG_TIMEOUT_SLACK: Final = 0.1
_PG_TIMEOUT_SLACK_MIN: Final = 0.05


def _bound_postgres_statements_by_the_deadline(engine: Engine) -> None:
    """The server ends a PostgreSQL statement the request outlived.

    asyncpg's cancel on a cancelled await needs the caller's process to ask for it; a
    caller that is frozen or killed, or one that does not cancel, would leave the statement
    running. A transaction begun under a deadline gets ``SET LOCAL statement_timeout`` of
    what is left (:func:`_statement_timeout_from_deadline`); before each later statement,
    if what is left has shrunk so far that the timeout would let it run past the deadline
    by more than the slack (a tenth of what is left, 50 ms at least), the timeout is set
    again (:func:`_statement_timeout_tightened`). LOCAL: it ends with the transaction.
    """
    event.listen(engine, "begin", _statement_timeout_from_deadline)
    # No commit/rollback listener to forget it: "begin" sets or clears it for every
    # transaction, and reading ``Connection.info`` in a rollback event (a connection being
    # invalidated after a failed statement) hung a process's shutdown.
    event.listen(engine, "before_cursor_execute", _statement_timeout_tightened)


def _statement_timeout_from_deadline(connection: Any) -> None:
    """A transaction begun under a deadline: ``SET LOCAL statement_timeout`` of what is
    left (one round trip more per transaction then, none without a deadline)."""
    left = deadline.remaining()
    if left is None or connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        # In autocommit (Database.read) there is no transaction for SET LOCAL to last: it
        # would be a round trip for nothing. asyncpg's cancel bounds those reads.
        connection.info.pop(_PG_TIMEOUT, None)
        return
    _set_statement_timeout(connection, left)


def _statement_timeout_tightened(connection: Any, *_: Any) -> None:
    left = deadline.remaining()
    timeout = connection.info.get(_PG_TIMEOUT)
    if left is None or timeout is None:
        return
    if timeout - left > max(_PG_TIMEOUT_SLACK_MIN, _PG_TIMEOUT_SLACK * left):
        _set_statement_timeout(connection, left)


def _set_statement_timeout(connection: Any, left: float) -> None:
    # At least 1 ms: 0 would mean no limit at all.
    milliseconds = max(1, math.ceil(left * 1000))
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        cursor.execute(f"SET LOCAL statement_timeout = {milliseconds}")
    finally:
        cursor.close()
    connection.info[_PG_TIMEOUT] = milliseconds / 1000


def _install_progress_handler(dbapi_connection: Any, _: Any) -> None:
    # The sqlite3 connection (chassis.sqlite_loop's), or aiosqlite's on an engine made on it.
    driver = getattr(dbapi_connection, "driver_connection", dbapi_connection)
    bound = _StatementDeadline()
    setattr(driver, _DEADLINE_ATTRIBUTE, bound)
    # Every 10 000 steps: a fraction of a millisecond late on a long statement.
    installed = driver.set_progress_handler(bound.passed, 10_000)
    if installed is not None:  # aiosqlite's answers an awaitable
        await_(installed)
    else:  # sqlite3's own, on the loop: SQLite's busy handler must stay off
        bound.busy_ms = None


def _bound_of(connection: Any) -> _StatementDeadline | None:
    proxied = connection.connection
    if proxied.dbapi_connection is None:
        return None
    found: _StatementDeadline | None = getattr(proxied.driver_connection, _DEADLINE_ATTRIBUTE, None)
    return found


def _statement_deadline_from_context(connection: Any, _: Any, statement: str, *__: Any) -> None:
    bound = _bound_of(connection)
    if bound is None:
        return
    bound.at = deadline.expires_at()
    dbapi_connection = connection.connection.dbapi_connection
    if (
        bound.busy_ms is not None
        and not dbapi_connection.driver_connection.in_transaction
        and _BEGINS_A_WRITE.match(statement)
    ):
        _busy_timeout_for(bound, dbapi_connection)


# The statements before which Python's sqlite3 begins a transaction (its legacy mode, the
# one SQLAlchemy uses): the first takes the database's write lock, waiting if it is held.
_BEGINS_A_WRITE: Final = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)


def _busy_timeout_for(bound: _StatementDeadline, dbapi_connection: Any) -> None:
    """Let the write about to take the lock wait for it no longer than the deadline allows
    (0 when it has passed: fail at once if the lock is held); 30 s without a deadline.

    A PRAGMA only when the value changes: one round trip on aiosqlite's thread per write
    transaction under a deadline, none without one.
    """
    left = deadline.remaining()
    wanted = (
        SQLITE_BUSY_TIMEOUT_MS
        if left is None
        else max(0, min(SQLITE_BUSY_TIMEOUT_MS, math.ceil(left * 1000)))
    )
    if wanted == bound.busy_ms:
        return
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={wanted}")
    finally:
        cursor.close()
    bound.busy_ms = wanted


def _statement_deadline_cleared(connection: Any, *_: Any) -> None:
    bound = _bound_of(connection)
    if bound is not None:
        bound.at = None


def _statement_deadline_cleared_on_error(context: Any) -> None:
    if context.connection is not None:
        _statement_deadline_cleared(context.connection)


def _sqlite_reader(path: Path) -> Engine:
    # Used from the event loop only, one query at a time (nothing awaits in between), so
    # the pool holds a connection or two; check_same_thread is off because a test may start
    # the same app on another thread's loop later.
    reader = create_engine(
        f"sqlite:///{path}",
        pool_size=2,
        connect_args={"check_same_thread": False, "timeout": 1},
    )
    event.listen(reader, "connect", _sqlite_reader_pragmas)
    trace_statements(reader)  # the read path is the hot path: its statements are in traces
    return reader


def _sqlite_reader_pragmas(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=ON")
    # A reader waits only while a checkpoint resets the WAL: briefly, and on the event loop.
    cursor.execute("PRAGMA busy_timeout=1000")
    cursor.close()


@contextlib.asynccontextmanager
async def _file_lock(path: Path) -> AsyncIterator[None]:
    # Polling with LOCK_NB keeps the wait cancellable, unlike a blocking flock in a thread.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + STARTUP_LOCK_TIMEOUT_SECONDS
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StartupLockTimeoutError(
                        f"start-up lock {path} held for over {STARTUP_LOCK_TIMEOUT_SECONDS}s"
                    ) from None
                await asyncio.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class UTCDateTime(TypeDecorator[datetime]):
    """A moment, stored in UTC and read back timezone-aware, on every backend.

    SQLite keeps no time zone: a plain ``DateTime(timezone=True)`` reads back naive there and
    would store an aware moment of another zone as its wall-clock time.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(
        self,
        value: datetime | None,
        dialect: Dialect,  # noqa: ARG002 - SQLAlchemy's signature
    ) -> datetime | None:
        if value is None:
            return None
        return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)

    def process_result_value(
        self,
        value: datetime | None,
        dialect: Dialect,  # noqa: ARG002 - SQLAlchemy's signature
    ) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)
