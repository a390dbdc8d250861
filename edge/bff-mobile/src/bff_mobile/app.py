"""Composition root: bff-mobile's routes on the chassis, wired to its cart storage and to the
clients of catalog and orders."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp

import chassis
from bff_mobile.adapters.catalog_client import CatalogClient
from bff_mobile.adapters.orders_client import OrdersClient
from bff_mobile.adapters.unit_of_work import SqlAlchemyUnitOfWork
from bff_mobile.entrypoints.problems import install_error_codes
from bff_mobile.entrypoints.routes import router
from chassis.connections import http_session
from chassis.upstream import HttpUpstream

if TYPE_CHECKING:
    from fastapi import FastAPI

    from bff_mobile.service_layer.ports import Catalog, Orders
    from bff_mobile.settings import BffMobileSettings

MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True, slots=True)
class Upstreams:
    """The clients of the services bff-mobile reads."""

    catalog: Catalog
    orders: Orders


def create_app(settings: BffMobileSettings, *, upstreams: Upstreams | None = None) -> FastAPI:
    """bff-mobile as an ASGI app; storage and clients open at start-up.

    ``upstreams`` stands in for the clients built from ``settings`` (tests pass fakes).
    """
    session: aiohttp.ClientSession | None = None

    async def open_clients(app: FastAPI) -> None:
        nonlocal session
        database: chassis.Database = app.state.database
        app.state.uow_factory = partial(SqlAlchemyUnitOfWork, database.sessionmaker)
        ports = upstreams
        if ports is None:
            # The session belongs to the running event loop, so it is made at start-up.
            session = http_session()

            def http(name: str, timeout: float) -> HttpUpstream:
                return HttpUpstream(
                    name,
                    settings.upstream(name),
                    session,
                    timeout=timeout,
                    connect_timeout=settings.connect_timeout,
                    resilience=app.state.resilience,
                )

            # The catalog is public; orders is called with each customer's own token.
            ports = Upstreams(
                catalog=CatalogClient(http("catalog", settings.catalog_timeout)),
                orders=OrdersClient(http("orders", settings.orders_timeout)),
            )
        app.state.catalog = ports.catalog
        app.state.orders = ports.orders

    async def close_clients(_: FastAPI) -> None:
        if session is not None:
            await session.close()

    app = chassis.create_app(
        settings,
        title="Souk bff-mobile",
        description="The API of Souk's mobile app: compact, aggregated screens (home, orders, "
        "cart) for a bearer-token client, with per-customer ETags and stable error codes.",
        routers=[router],
        migrations=MIGRATIONS,
        on_startup=[open_clients],
        on_shutdown=[close_clients],
    )
    install_error_codes(app)
    return app
