"""A real, migrated SQLite catalog in tmp_path, the real app on top of it, and a fake of the
access-token validator."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient

from catalog.adapters.unit_of_work import SqlAlchemyUnitOfWork
from catalog.app import MIGRATIONS, create_app
from catalog.settings import CatalogSettings
from chassis import Database
from chassis.testing import ReadableTokens

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from fastapi import FastAPI

ADMIN = {"Authorization": "Bearer souk-cli;catalog:write"}
"""The Authorization header of a token ReadableTokens reads as granting catalog:write."""


def bearer(subject: str, *scopes: str) -> dict[str, str]:
    """The Authorization header of a token ReadableTokens reads as ``subject``'s."""
    return {"Authorization": f"Bearer {subject};{','.join(scopes)}"}


def catalog_app(settings: CatalogSettings) -> FastAPI:
    """The catalog app, judging access tokens with ReadableTokens."""
    app = create_app(settings)
    app.state.token_validator = ReadableTokens()
    return app


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
    """The catalog app, started (migrated and seeded with the demo catalog).

    Its requests carry an admin's token, with catalog:write.
    """
    with TestClient(catalog_app(settings), headers=ADMIN) as client:
        yield client
