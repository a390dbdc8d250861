"""Composition root: the inventory's gRPC servicer and HTTP routes, wired to SQLAlchemy."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import chassis
from chassis.grpc import GrpcServer
from chassis.messaging.lifecycle import Messaging
from contracts.inventory.v1.inventory_pb2_grpc import add_InventoryServicer_to_server
from inventory.adapters.demo_stock import load_demo_stock
from inventory.adapters.unit_of_work import SqlAlchemyUnitOfWork
from inventory.domain.errors import InventoryError
from inventory.entrypoints.expiry import expire_reservations_every
from inventory.entrypoints.grpc import REQUIRED_SCOPES, SERVICE_NAME, InventoryServicer
from inventory.entrypoints.problems import inventory_problem
from inventory.entrypoints.routes import router
from inventory.service_layer.handlers import import_stock

if TYPE_CHECKING:
    import grpc
    from fastapi import FastAPI

    from inventory.service_layer.ports import UnitOfWorkFactory
    from inventory.settings import InventorySettings

MIGRATIONS = Path(__file__).parent / "migrations"

_log = chassis.get_logger("inventory")


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: InventorySettings) -> FastAPI:
    """The inventory as an ASGI app that also serves gRPC; both start with the app."""

    async def wire_storage(app: FastAPI) -> None:
        database: chassis.Database = app.state.database
        uow_factory: UnitOfWorkFactory = partial(SqlAlchemyUnitOfWork, database.sessionmaker)
        app.state.uow_factory = uow_factory
        if settings.seed_demo_stock:
            # Replicas sharing a database start together; only one may seed at a time.
            async with database.startup_lock():
                added = await import_stock(load_demo_stock(), uow_factory())
            _log.info("demo stock seeded", added=added)

    def register(server: grpc.aio.Server) -> None:
        # Called as the gRPC server starts, after wire_storage has opened the storage.
        servicer = InventoryServicer(app.state.uow_factory, clock=utc_now)
        add_InventoryServicer_to_server(servicer, server)

    async def start_expiry(app: FastAPI) -> None:
        app.state.expiry = asyncio.create_task(
            expire_reservations_every(
                settings.expiry_interval_seconds, app.state.uow_factory, utc_now
            )
        )

    async def stop_expiry(app: FastAPI) -> None:
        app.state.expiry.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await app.state.expiry

    grpc_server = GrpcServer(
        settings, register=register, service_names=[SERVICE_NAME], scopes=REQUIRED_SCOPES
    )
    app = chassis.create_app(
        settings,
        title="Souk inventory",
        description="Stock per SKU and the reservations that hold it; served over gRPC. "
        "This HTTP side answers health, metrics and read-only stock levels.",
        routers=[router],
        migrations=MIGRATIONS,
        on_startup=[wire_storage, grpc_server.start, start_expiry],
        # Run in reverse: gRPC stops taking calls first, then the sweep stops.
        on_shutdown=[stop_expiry, grpc_server.stop],
        readiness_checks={"grpc": grpc_server.check},
        messaging=Messaging(settings),
    )
    app.state.grpc_server = grpc_server
    app.add_exception_handler(InventoryError, inventory_problem)
    return app
