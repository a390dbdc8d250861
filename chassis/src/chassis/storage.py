"""What the chassis knows of storage whatever the store: the error of a passing outage, and
what a migration's ``op`` offers the chassis's table-creating functions.

It imports nothing of the chassis, so the problem handlers, the unit of work, the messaging
tables and the event store's tables all depend on it rather than on each other.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sqlalchemy import Connection


class MigrationOperations(Protocol):
    """What the chassis's ``create_*_tables_v1`` functions need of Alembic's ``op``."""

    def get_bind(self) -> Connection: ...


class StorageUnavailableError(Exception):
    """The database cannot be used just now (connection lost, pool exhausted, locked for too
    long): the same request may succeed if tried again later."""


# SQLite and asyncpg report these as OperationalError, as they do programming errors ("no
# such table"), so the message decides: only a passing condition is worth a retry.
_PASSING_CONDITIONS = (
    "database is locked",
    "connection refused",
    "could not connect",
    "connection was closed",
    "connection is closed",
    "too many clients",
    "deadlock detected",
    "the database system is starting up",
    "the database system is shutting down",
)


def storage_unavailable(error: BaseException) -> bool:
    """Whether ``error`` says the database is unusable for now rather than the request wrong."""
    # Looked up, not imported: a process without a database never loads SQLAlchemy, and then
    # no error can be one of its errors.
    sa_exc = sys.modules.get("sqlalchemy.exc")
    if sa_exc is None:
        return False
    if isinstance(error, sa_exc.TimeoutError):  # no connection free in the pool in time
        return True
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return True
        message = str(error.orig).lower()
        return any(condition in message for condition in _PASSING_CONDITIONS)
    return False
