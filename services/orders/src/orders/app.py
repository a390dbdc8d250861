"""Composition root: the orders' routes on the chassis, wired to storage, the clients of
catalog, inventory and billing, and the saga that drives checkouts through the bus."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import chassis
from chassis.connections import Connections
from chassis.messaging.lifecycle import Messaging
from chassis.upstream import HttpUpstream
from orders.adapters.billing_client import BILLING_DEPENDENCY_PROBLEMS, BillingClient
from orders.adapters.catalog_client import CatalogClient
from orders.adapters.inventory_client import InventoryClient
from orders.adapters.saga_metrics import SagaMetrics
from orders.adapters.unit_of_work import SqlAlchemyUnitOfWork
from orders.domain.errors import OrdersError
from orders.entrypoints.problems import orders_problem
from orders.entrypoints.routes import router
from orders.entrypoints.saga_consumer import SagaConsumer, saga_consumer
from orders.service_layer.checkout import Checkout, RetryPolicy
from orders.service_layer.saga_handler import CheckoutSaga, restart_stalled

if TYPE_CHECKING:
    from fastapi import FastAPI

    from chassis.resilience import Resilience
    from orders.service_layer.ports import Billing, Catalog, Inventory, UnitOfWorkFactory
    from orders.settings import OrdersSettings

MIGRATIONS = Path(__file__).parent / "migrations"
# What orders' own token asks for: taking (and finding, to undo) payments, and reserving and
# reading stock.
CLIENT_SCOPES = ("payments:read", "payments:write", "stock:read", "stock:write")


@dataclass(frozen=True, slots=True)
class Upstreams:
    """The clients of the services the checkout calls."""

    catalog: Catalog
    inventory: Inventory
    billing: Billing


def create_app(settings: OrdersSettings, *, upstreams: Upstreams | None = None) -> FastAPI:
    """The orders service as an ASGI app; storage and clients open at start-up, and the saga
    takes its commands from the bus once they have.

    ``upstreams`` stands in for the clients built from ``settings`` (tests pass fakes).
    """
    clients = _Clients(settings)
    commands = SagaConsumer()

    async def start_checkout(app: FastAPI) -> None:
        database: chassis.Database = app.state.database
        uow_factory: UnitOfWorkFactory = partial(SqlAlchemyUnitOfWork, database.sessionmaker)
        ports = upstreams or await clients.open(app.state.resilience)
        checkout = Checkout(
            catalog=ports.catalog,
            inventory=ports.inventory,
            billing=ports.billing,
            retry=RetryPolicy(
                attempts=settings.retry_attempts,
                base_delay=settings.retry_base_delay,
                max_delay=settings.retry_max_delay,
            ),
            reservation_ttl_seconds=settings.reservation_ttl_seconds,
        )
        app.state.uow_factory = uow_factory
        saga_metrics = app.state.saga_metrics = SagaMetrics(app.state.http_metrics.registry)
        saga_metrics.start(database.sessionmaker)
        commands.attach(CheckoutSaga(uow_factory, checkout), timer=saga_metrics.step_ran)
        await restart_stalled(uow_factory, at=datetime.now(UTC))

    async def stop_checkout(app: FastAPI) -> None:
        if (saga_metrics := getattr(app.state, "saga_metrics", None)) is not None:
            await saga_metrics.stop()
        await clients.close()

    app = chassis.create_app(
        settings,
        title="Souk orders",
        description="Orders of the Souk shop: place, follow and cancel them; the checkout "
        "prices them with the catalog, reserves stock with inventory and takes payment "
        "with billing. API 1.1 adds an order's optional `delivery` (address and option); "
        "API 1.2 prices it: `delivery.price`, included in `total`, and "
        "`GET /orders/delivery-options`; "
        "a 1.0 client's request, without one, is placed and answered as before.",
        version="1.2.0",
        routers=[router],
        migrations=MIGRATIONS,
        on_startup=[start_checkout],
        on_shutdown=[stop_checkout],
        messaging=Messaging(
            settings,
            consumers=[
                saga_consumer(
                    commands,
                    concurrency=settings.checkout_concurrency,
                    step_timeout=settings.step_handler_timeout,
                    max_retry_delay=settings.retry_max_delay,
                )
            ],
        ),
    )
    app.add_exception_handler(OrdersError, orders_problem)
    return app


class _Clients:
    """The process's one aiohttp session, a gRPC channel per inventory replica and its own
    access token, and the clients on them."""

    def __init__(self, settings: OrdersSettings) -> None:
        self._settings = settings
        self._connections = Connections()

    async def open(self, resilience: Resilience) -> Upstreams:
        # They belong to the running event loop, so they are made at start-up, not before.
        settings = self._settings
        session = self._connections.http_session()
        inventory = self._connections.grpc_upstream(
            "inventory",
            settings.upstream("inventory"),
            timeout=settings.inventory_timeout,
            resilience=resilience,
        )
        tokens = (
            None
            if settings.client_secret is None
            else self._connections.client_credentials(
                settings,
                client_id=settings.client_id,
                secret=settings.client_secret.get_secret_value(),
                scopes=CLIENT_SCOPES,
            )
        )

        def http(
            name: str,
            timeout: float,
            *,
            authorized: bool = False,
            dependency_problems: frozenset[str] = frozenset(),
        ) -> HttpUpstream:
            return HttpUpstream(
                name,
                settings.upstream(name),
                session,
                timeout=timeout,
                connect_timeout=settings.connect_timeout,
                tokens=tokens if authorized else None,
                resilience=resilience,
                dependency_problems=dependency_problems,
            )

        # Browsing the catalog is public; billing and inventory check orders' token.
        return Upstreams(
            catalog=CatalogClient(http("catalog", settings.catalog_timeout)),
            inventory=InventoryClient(inventory, timeout=settings.inventory_timeout, tokens=tokens),
            billing=BillingClient(
                http(
                    "billing",
                    settings.billing_timeout,
                    authorized=True,
                    dependency_problems=BILLING_DEPENDENCY_PROBLEMS,
                )
            ),
        )

    async def close(self) -> None:
        await self._connections.close()
