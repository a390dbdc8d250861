"""Sessions in bff-web's own database, migrated, on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bff_web.adapters.session_store import SqlSessionStore
from bff_web.app import MIGRATIONS
from bff_web.domain.session import CustomerTokens, Session
from chassis import Database
from souk.testing import require_server

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432"
NOW = datetime.now(UTC)


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """bff-web's database migrated to head: a SQLite file, or a scratch PostgreSQL one."""
    if request.param == "sqlite":
        database = Database(f"sqlite+aiosqlite:///{tmp_path / 'bff-web.db'}", migrations=MIGRATIONS)
        await database.migrate()
        yield database
        await database.dispose()
        return
    require_server("PostgreSQL", "127.0.0.1", 5432)
    name = f"souk_bff_web_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(f"{POSTGRES}/postgres", isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    database = Database(f"{POSTGRES}/{name}", migrations=MIGRATIONS)
    try:
        await database.migrate()
        yield database
    finally:
        await database.dispose()
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def test_a_session_comes_back_as_it_was_saved(database: Database) -> None:
    store = SqlSessionStore(database.sessionmaker)
    session = Session.start(NOW, timedelta(days=1))
    session.cart.add("saffron", 3)
    session.begin_sign_in("/cart")
    session.flash("Added to your cart.")
    await store.save(session)
    assert await store.load(session.id, NOW) == session
    session.tokens = CustomerTokens("access", "refresh", NOW + timedelta(minutes=10))
    session.pending_sign_in = None
    await store.save(session)
    assert await store.load(session.id, NOW) == session


async def test_an_unknown_expired_or_deleted_session_is_none(database: Database) -> None:
    store = SqlSessionStore(database.sessionmaker)
    session = Session.start(NOW, timedelta(minutes=5))
    await store.save(session)
    assert await store.load("never-issued", NOW) is None
    assert await store.load(session.id, NOW + timedelta(minutes=6)) is None
    await store.delete(session.id)
    assert await store.load(session.id, NOW) is None


async def test_the_database_never_holds_a_session_id_in_clear(database: Database) -> None:
    store = SqlSessionStore(database.sessionmaker)
    session = Session.start(NOW, timedelta(days=1))
    await store.save(session)
    async with database.sessionmaker() as db:
        rows = (await db.execute(text("SELECT id_digest, data FROM sessions"))).all()
    assert len(rows) == 1
    assert session.id not in rows[0].id_digest
    assert session.id not in rows[0].data
