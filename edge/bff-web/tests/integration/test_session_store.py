"""Sessions in bff-web's own database, migrated, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import text

from bff_web.adapters.session_store import SqlSessionStore
from bff_web.app import MIGRATIONS
from bff_web.domain.session import CustomerTokens, Session
from chassis import Database
from souk.testing import scratch_database

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

NOW = datetime.now(UTC)


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """bff-web's database migrated to head: a SQLite file, or a scratch PostgreSQL one."""
    async with scratch_database(request.param, tmp_path, "bff-web") as url:
        database = Database(url, migrations=MIGRATIONS)
        try:
            await database.migrate()
            yield database
        finally:
            await database.dispose()


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
