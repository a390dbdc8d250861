"""Composition root: the storefront's pages on the chassis, wired to its upstreams and sessions."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import chassis
from bff_web.adapters.catalog_client import CatalogClient
from bff_web.adapters.identity_client import IdentityClient
from bff_web.adapters.inventory_client import InventoryClient
from bff_web.adapters.orders_client import OrdersClient
from bff_web.adapters.session_store import SqlSessionStore
from bff_web.entrypoints import assets, auth, pages
from bff_web.entrypoints.canonical_host import CanonicalHost
from bff_web.entrypoints.deps import Shop
from bff_web.entrypoints.errors import install_error_pages
from chassis.connections import Connections
from chassis.upstream import HttpUpstream

if TYPE_CHECKING:
    from fastapi import FastAPI

    from bff_web.settings import BffWebSettings
    from chassis.resilience import Resilience

MIGRATIONS = Path(__file__).parent / "migrations"
# The storefront's own token (client credentials) only reads stock for product pages.
CLIENT_SCOPES = ("stock:read",)


def create_app(settings: BffWebSettings) -> FastAPI:
    """bff-web as an ASGI app; its HTTP session, gRPC channel and token open at start-up."""
    clients = _Clients(settings)

    async def open_clients(app: FastAPI) -> None:
        database: chassis.Database = app.state.database
        app.state.shop = await clients.open(
            SqlSessionStore(database.sessionmaker), app.state.resilience
        )

    async def close_clients(_: FastAPI) -> None:
        await clients.close()

    app = chassis.create_app(
        settings,
        title="Souk storefront",
        description="The web shop's backend: server-rendered pages for the browser, which "
        "holds only a session cookie; the customer's tokens stay here.",
        routers=[pages.router, auth.router, assets.router],
        migrations=MIGRATIONS,
        on_startup=[open_clients],
        on_shutdown=[close_clients],
    )
    app.mount("/static", assets.static_files(), name="static")
    install_error_pages(app)
    app.add_middleware(CanonicalHost, public_url=settings.public_url)
    return app


class _Clients:
    """The process's one aiohttp session, one gRPC channel and its own access token."""

    def __init__(self, settings: BffWebSettings) -> None:
        self._settings = settings
        self._connections = Connections()

    async def open(self, sessions: SqlSessionStore, resilience: Resilience) -> Shop:
        # They belong to the running event loop, so they are made at start-up, not before.
        settings = self._settings
        secret = settings.client_secret.get_secret_value()
        session = self._connections.http_session()
        channel = self._connections.grpc_channel(settings.upstream("inventory"))
        tokens = self._connections.client_credentials(
            settings, client_id=settings.client_id, secret=secret, scopes=CLIENT_SCOPES
        )

        def http(name: str, timeout: float) -> HttpUpstream:
            return HttpUpstream(
                name,
                settings.upstream(name),
                session,
                timeout=timeout,
                connect_timeout=settings.connect_timeout,
                resilience=resilience,
            )

        return Shop(
            settings=settings,
            catalog=CatalogClient(http("catalog", settings.catalog_timeout)),
            stock=InventoryClient(channel, timeout=settings.inventory_timeout, tokens=tokens),
            orders=OrdersClient(http("orders", settings.orders_timeout)),
            identity=IdentityClient(
                settings.upstream("identity"),
                session,
                client_id=settings.client_id,
                secret=secret,
                timeout=settings.identity_timeout,
                connect_timeout=settings.connect_timeout,
                accounts=http("identity", settings.identity_timeout),
            ),
            sessions=sessions,
        )

    async def close(self) -> None:
        await self._connections.close()
