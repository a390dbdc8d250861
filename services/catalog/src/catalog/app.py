"""Composition root: the catalog's routes on the chassis, wired to SQLAlchemy storage."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import chassis
from catalog.adapters.demo_catalog import load_demo_catalog
from catalog.adapters.reading import ReadOnlyUnitOfWork
from catalog.adapters.unit_of_work import SqlAlchemyUnitOfWork
from catalog.domain.errors import CatalogError
from catalog.entrypoints.problems import catalog_problem
from catalog.entrypoints.routes import router
from catalog.service_layer.handlers import import_catalog
from chassis.messaging.lifecycle import Messaging

if TYPE_CHECKING:
    from fastapi import FastAPI

    from catalog.service_layer.ports import UnitOfWorkFactory
    from catalog.settings import CatalogSettings

MIGRATIONS = Path(__file__).parent / "migrations"

_log = chassis.get_logger("catalog")


def create_app(settings: CatalogSettings) -> FastAPI:
    """The catalog service as an ASGI app; storage is opened when the app starts."""

    async def wire_storage(app: FastAPI) -> None:
        database: chassis.Database = app.state.database
        uow_factory: UnitOfWorkFactory = partial(SqlAlchemyUnitOfWork, database.sessionmaker)
        app.state.uow_factory = uow_factory
        app.state.reads_factory = partial(ReadOnlyUnitOfWork, database)
        if settings.seed_demo_data:
            # Replicas sharing a database start together; only one may seed at a time.
            async with database.startup_lock():
                added = await import_catalog(load_demo_catalog(), uow_factory())
            _log.info("demo catalog seeded", added=added)

    app = chassis.create_app(
        settings,
        title="Souk catalog",
        description="Products and categories of the Souk shop: browse, search and administer. "
        "Every product added or revised is published on the bus (topic catalog).",
        routers=[router],
        migrations=MIGRATIONS,
        on_startup=[wire_storage],
        # Publishes the product events the outbox holds; the catalog consumes nothing.
        messaging=Messaging(settings),
    )
    app.add_exception_handler(CatalogError, catalog_problem)
    return app
