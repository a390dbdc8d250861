"""Databases for the messaging tests: a SQLite file, or a scratch PostgreSQL database."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from chassis import Database
from chassis.messaging.tables import metadata
from souk.testing import scratch_database


@contextlib.asynccontextmanager
async def messaging_database(backend: str, tmp_path: Path) -> AsyncIterator[Database]:
    """A database with the messaging tables, dropped afterwards."""
    async with scratch_database(backend, tmp_path, "messaging") as url:
        database = Database(url)
        try:
            await _create_tables(database)
            yield database
        finally:
            await database.dispose()


async def _create_tables(database: Database) -> None:
    async with database.engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
