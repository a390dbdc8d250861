"""SQLite for the async engine without a thread: the stdlib ``sqlite3`` driver on the event loop.

aiosqlite runs every statement on a worker thread of its own and hands it over and back
through a queue: connect, cursor, execute, fetch, commit and rollback are each two thread
hand-offs, and under load a service spent more CPU crossing threads than running SQL
(docs/performance.md, docs/performance-bus.md). A statement on a SQLite file in WAL mode
takes tens of microseconds — less than one hand-off — so this dialect runs them right where
SQLAlchemy's async layer asks for them, inside its greenlet, on the event loop: no thread,
no queue. ``Database.read`` already reads that way; this does the same for the writes.

What would block the loop is waiting for SQLite's write lock, which another process (or
another connection of this one) holds: SQLite's own busy handler sleeps where it is called,
and a write transaction of this process waiting for that lock could never be committed by
the coroutine that holds it. So the connections have no busy handler (``busy_timeout=0``);
a statement or commit answered ``SQLITE_BUSY`` is tried again after an ``asyncio.sleep``
(1, 2, 4 … 50 ms), which lets the loop run the holder on, up to the same 30 s that
``busy_timeout`` allowed. Only plain ``SQLITE_BUSY`` is retried: on it SQLite has done
nothing of the statement. ``SQLITE_BUSY_SNAPSHOT`` (a read transaction that cannot become
a write one) is raised at once, as SQLite's busy handler would have.

What does not change: the same ``sqlite3`` module and hence the same transactions (a write
begins one, ``commit`` and ``rollback`` end it), the same SQL, WAL, ``synchronous=NORMAL``.
A long statement still holds the loop while it runs, as a read does: the deadline's progress
handler (``chassis.db``) interrupts one whose request has given up.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Final, TypeVar

from sqlalchemy import pool
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.util import await_
from sqlalchemy.util.concurrency import in_greenlet

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from sqlalchemy.engine import URL

T = TypeVar("T")

__all__ = ["DRIVER", "LoopConnection", "SQLiteOnTheLoop", "wait_while_busy"]

DRIVER: Final = "souk_loop"
"""The driver name of the dialect: ``sqlite+souk_loop:///path``."""

SQLITE_BUSY: Final = 5
DEFAULT_BUSY_SECONDS: Final = 30.0
_FIRST_WAIT: Final = 0.001
_LONGEST_WAIT: Final = 0.05


class LoopConnection(sqlite3.Connection):
    """A ``sqlite3`` connection with a ``__dict__`` (a subclass): the chassis keeps
    per-connection state on it (the statement deadline of ``chassis.db``)."""


async def _nothing() -> None:
    return None


def _touch_the_loop() -> None:
    """Switch out of the greenlet and back once, without a pass of the loop.

    ``AsyncConnection.execute`` insists that its call awaited something (the check is meant
    to catch a sync driver used by mistake); this awaits a coroutine that returns at once:
    two greenlet switches, microseconds, the task never suspended.
    """
    if in_greenlet():
        await_(_nothing())


def _pause(seconds: float) -> None:
    """Sleep without holding the event loop when called inside the async engine's greenlet."""
    if in_greenlet():
        await_(asyncio.sleep(seconds))
    else:  # a synchronous caller: no loop to give back
        time.sleep(seconds)


def wait_while_busy(call: Callable[[], T], *, busy_seconds: float) -> T:
    """``call()``, again after a pause each time SQLite answers ``SQLITE_BUSY``, for at most
    ``busy_seconds`` in all; the last ``OperationalError`` once that is spent."""
    waited = 0.0
    pause = _FIRST_WAIT
    while True:
        try:
            return call()
        except sqlite3.OperationalError as error:
            if getattr(error, "sqlite_errorcode", None) != SQLITE_BUSY or waited >= busy_seconds:
                raise
        _pause(pause)
        waited += pause
        pause = min(pause * 2, _LONGEST_WAIT)


class _Cursor:
    """A DB-API cursor over a ``sqlite3`` one, as SQLAlchemy's async layer expects it.

    Rows are fetched as the statement runs (as SQLAlchemy's aiosqlite adapter does), so no
    statement stays half-stepped, holding a read snapshot, while the coroutine awaits.
    """

    __slots__ = ("_busy_seconds", "_cursor", "_rows", "description")

    def __init__(self, cursor: sqlite3.Cursor, busy_seconds: float) -> None:
        self._cursor = cursor
        self._busy_seconds = busy_seconds
        self._rows: deque[Any] = deque()
        self.description: Any = None

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    def execute(self, operation: str, parameters: Any = ()) -> None:
        _touch_the_loop()
        cursor = self._cursor
        wait_while_busy(
            lambda: cursor.execute(operation, parameters), busy_seconds=self._busy_seconds
        )
        self._took(cursor)

    def executemany(self, operation: str, parameters: Any) -> None:
        _touch_the_loop()
        cursor = self._cursor
        wait_while_busy(
            lambda: cursor.executemany(operation, parameters), busy_seconds=self._busy_seconds
        )
        self._took(cursor)

    def _took(self, cursor: sqlite3.Cursor) -> None:
        self.description = cursor.description
        self._rows = deque(cursor.fetchall()) if cursor.description else deque()

    async def _async_soft_close(self) -> None:
        """What the async layer calls once a statement ran: the rows are already here."""

    def fetchone(self) -> Any:
        return self._rows.popleft() if self._rows else None

    def fetchmany(self, size: int | None = None) -> list[Any]:
        rows = self._rows
        return [rows.popleft() for _ in range(min(size or self.arraysize, len(rows)))]

    def fetchall(self) -> list[Any]:
        rows = list(self._rows)
        self._rows.clear()
        return rows

    def __iter__(self) -> Iterator[Any]:
        while self._rows:
            yield self._rows.popleft()

    def close(self) -> None:
        self._rows.clear()
        self._cursor.close()


class _Connection:
    """A DB-API connection over a ``sqlite3`` one: statements and commits wait while busy
    without holding the loop; everything else is ``sqlite3``'s own."""

    __slots__ = ("_connection", "busy_seconds")

    def __init__(self, connection: LoopConnection, busy_seconds: float) -> None:
        self._connection = connection
        self.busy_seconds = busy_seconds

    @property
    def driver_connection(self) -> LoopConnection:
        """The ``sqlite3`` connection itself."""
        return self._connection

    def cursor(self, server_side: bool = False) -> _Cursor:  # noqa: ARG002
        return _Cursor(self._connection.cursor(), self.busy_seconds)

    def execute(self, operation: str, parameters: Any = ()) -> _Cursor:
        cursor = self.cursor()
        cursor.execute(operation, parameters)
        return cursor

    def commit(self) -> None:
        _touch_the_loop()
        wait_while_busy(self._connection.commit, busy_seconds=self.busy_seconds)

    def rollback(self) -> None:
        self._connection.rollback()

    def close(self) -> None:
        self._connection.close()

    @property
    def isolation_level(self) -> str | None:
        level: str | None = self._connection.isolation_level
        return level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._connection.isolation_level = value  # type: ignore[assignment]

    @property
    def in_transaction(self) -> bool:
        return bool(self._connection.in_transaction)

    def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._connection.create_function(*args, **kwargs)


class SQLiteOnTheLoop(SQLiteDialect_pysqlite):
    """The pysqlite dialect, declared async: SQLAlchemy's async engine runs its calls in its
    greenlet, on the loop; busy waits give the loop back (module docstring)."""

    driver = DRIVER
    is_async = True
    supports_statement_cache = True
    supports_server_side_cursors = False

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        if cls._is_url_file_db(url):
            return pool.AsyncAdaptedQueuePool
        return pool.StaticPool

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        # sqlite3's ``timeout`` is its busy handler, which would sleep on the loop: none. The
        # wait it stood for is this dialect's, and gives the loop back meanwhile.
        busy_seconds = float(kwargs.pop("timeout", DEFAULT_BUSY_SECONDS))
        kwargs["timeout"] = 0
        kwargs["factory"] = LoopConnection
        # One thread uses a connection at a time, but not always the one that made it (a
        # test may serve an app from another thread's loop; the pool hands connections on).
        kwargs["check_same_thread"] = False
        connection: LoopConnection = wait_while_busy(
            lambda: self.loaded_dbapi.connect(*args, **kwargs), busy_seconds=busy_seconds
        )
        return _Connection(connection, busy_seconds)

    def get_driver_connection(self, connection: Any) -> Any:
        return connection.driver_connection


registry.register(f"sqlite.{DRIVER}", __name__, "SQLiteOnTheLoop")
