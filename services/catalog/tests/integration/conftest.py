"""A real, migrated SQLite catalog in tmp_path, and the real app on top of it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient

from catalog.adapters.unit_of_work import SqlAlchemyUnitOfWork
from catalog.app import MIGRATIONS, create_app
from catalog.settings import CatalogSettings
from chassis import Database

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    """An empty catalog database (categories only), migrated to head."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'catalog.db'}", migrations=MIGRATIONS)
    await database.migrate()
    yield database
    await database.dispose()


@pytest.fixture
def uow(database: Database) -> SqlAlchemyUnitOfWork:
    return SqlAlchemyUnitOfWork(database.sessionmaker)


@pytest.fixture
def settings(tmp_path: Path) -> CatalogSettings:
    return CatalogSettings(data_dir=tmp_path, instance="catalog-test")


@pytest.fixture
def client(settings: CatalogSettings) -> Iterator[TestClient]:
    """The catalog app, started (migrated and seeded with the demo catalog)."""
    with TestClient(create_app(settings)) as client:
        yield client
