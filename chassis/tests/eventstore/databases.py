"""Databases for the event-store tests: a SQLite file, or a scratch PostgreSQL database."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from chassis import Database
from chassis.eventstore.tables import metadata as event_store_tables
from chassis.messaging.tables import metadata as messaging_tables
from souk.testing import scratch_database


@contextlib.asynccontextmanager
async def event_store_database(backend: str, tmp_path: Path) -> AsyncIterator[Database]:
    """A database with the event-store and messaging tables, dropped afterwards."""
    async with scratch_database(backend, tmp_path, "event-store") as url:
        database = Database(url)
        try:
            await _create_tables(database)
            yield database
        finally:
            await database.dispose()


async def _create_tables(database: Database) -> None:
    async with database.engine.begin() as connection:
        await connection.run_sync(event_store_tables.create_all)
        await connection.run_sync(messaging_tables.create_all)
