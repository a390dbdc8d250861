"""Composition root: notifications' consumers and routes on the chassis, wired to SQLAlchemy."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import chassis
from chassis.messaging.lifecycle import Messaging
from notifications.adapters.unit_of_work import SqlAlchemyUnitOfWork
from notifications.entrypoints.consumers import consumers
from notifications.entrypoints.routes import router

if TYPE_CHECKING:
    from fastapi import FastAPI

    from notifications.service_layer.ports import UnitOfWork
    from notifications.settings import NotificationsSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: NotificationsSettings) -> FastAPI:
    """Notifications as an ASGI app: it listens to the bus once the database is migrated."""

    def unit_of_work() -> UnitOfWork:
        # The database opens at start-up, before the consumers and the routes are first used.
        database: chassis.Database = app.state.database
        return SqlAlchemyUnitOfWork(database.sessionmaker)

    app = chassis.create_app(
        settings,
        title="Souk notifications",
        description="What Souk tells each customer about their orders and payments, made "
        "from the events orders and billing publish. Read-only: nobody asks it to send.",
        routers=[router],
        migrations=MIGRATIONS,
        messaging=Messaging(settings, consumers(unit_of_work), relay_outbox=False),
    )
    app.state.uow_factory = unit_of_work
    return app
