"""Composition root: order-history's consumers and routes on the chassis, wired to SQLAlchemy
and, for its product listing, to the catalog."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

import aiohttp

import chassis
from chassis.connections import http_session
from chassis.messaging.lifecycle import Messaging
from chassis.upstream import HttpUpstream
from order_history.adapters.catalog import HttpCatalog
from order_history.adapters.unit_of_work import SqlAlchemyUnitOfWork
from order_history.entrypoints import rebuild_routes, routes
from order_history.entrypoints.catalog_listing import CatalogListingReader
from order_history.entrypoints.consumers import consumers
from order_history.service_layer.rebuilding import Rebuilds

if TYPE_CHECKING:
    from fastapi import FastAPI

    from order_history.service_layer.ports import UnitOfWork
    from order_history.settings import OrderHistorySettings

MIGRATIONS = Path(__file__).parent / "migrations"
CATALOG_TIMEOUT: Final = 5.0
CATALOG_CONNECT_TIMEOUT: Final = 2.0


def create_app(settings: OrderHistorySettings) -> FastAPI:
    """Order-history as an ASGI app: it listens to the bus once the database is migrated."""

    def unit_of_work() -> UnitOfWork:
        # The database opens at start-up, before the consumers and the routes are first used.
        database: chassis.Database = app.state.database
        return SqlAlchemyUnitOfWork(database.sessionmaker)

    rebuilds = Rebuilds(unit_of_work)
    messaging = Messaging(settings, consumers(unit_of_work), relay_outbox=False)
    # Without a catalog in the topology, product names come from the bus alone.
    catalog_urls = settings.upstreams.get("catalog")
    sessions: list[aiohttp.ClientSession] = []
    readers: list[CatalogListingReader] = []

    async def read_catalog_listing(_: FastAPI) -> None:
        if not catalog_urls:
            return
        session = http_session()
        sessions.append(session)
        upstream = HttpUpstream(
            "catalog",
            catalog_urls,
            session,
            timeout=CATALOG_TIMEOUT,
            connect_timeout=CATALOG_CONNECT_TIMEOUT,
        )
        reader = CatalogListingReader(HttpCatalog(upstream), messaging, unit_of_work)
        readers.append(reader)
        reader.start()

    async def stop_background_work(_: FastAPI) -> None:
        for reader in readers:
            await reader.stop()
        for session in sessions:
            await session.close()
        readers.clear()
        sessions.clear()
        await rebuilds.stop()

    app = chassis.create_app(
        settings,
        title="Souk order history",
        description="Each customer's orders with their items, product names, payment and "
        "stock, assembled from the events of orders, billing, inventory and catalog (CQRS: "
        "a read model of its own, rebuilt from its event archive by `souk replay "
        "order-history`). Read-only: nothing here changes an order.",
        routers=[routes.router, rebuild_routes.router],
        migrations=MIGRATIONS,
        on_startup=[read_catalog_listing],
        on_shutdown=[stop_background_work],
        messaging=messaging,
    )
    app.state.uow_factory = unit_of_work
    app.state.rebuilds = rebuilds
    return app
