"""Databases for the event-store tests: a SQLite file, or a scratch PostgreSQL database."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from chassis import Database
from chassis.eventstore.tables import metadata as event_store_tables
from chassis.messaging.tables import metadata as messaging_tables
from souk.testing import require_server

POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432"


@contextlib.asynccontextmanager
async def event_store_database(backend: str, tmp_path: Path) -> AsyncIterator[Database]:
    """A database with the event-store and messaging tables, dropped afterwards."""
    if backend == "sqlite":
        database = Database(f"sqlite+aiosqlite:///{tmp_path / 'service.db'}")
        try:
            await _create_tables(database)
            yield database
        finally:
            await database.dispose()
        return
    require_server("PostgreSQL", "127.0.0.1", 5432)
    name = f"souk_es_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(f"{POSTGRES}/postgres", isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    database = Database(f"{POSTGRES}/{name}")
    try:
        await _create_tables(database)
        yield database
    finally:
        await database.dispose()
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def _create_tables(database: Database) -> None:
    async with database.engine.begin() as connection:
        await connection.run_sync(event_store_tables.create_all)
        await connection.run_sync(messaging_tables.create_all)
