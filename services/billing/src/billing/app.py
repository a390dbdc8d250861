"""Composition root: billing's routes on the chassis, wired to SQLAlchemy and the providers."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp

import chassis
from billing.adapters.payment_providers import HttpPaymentProvider
from billing.adapters.unit_of_work import SqlAlchemyUnitOfWork
from billing.domain.errors import BillingError
from billing.entrypoints import accounts
from billing.entrypoints.problems import billing_problem
from billing.entrypoints.reconciliation import Reconciliation
from billing.entrypoints.routes import router
from chassis.connections import http_session
from chassis.messaging.lifecycle import Messaging

if TYPE_CHECKING:
    from fastapi import FastAPI

    from billing.service_layer.ports import UnitOfWorkFactory
    from billing.settings import BillingSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: BillingSettings) -> FastAPI:
    """Billing as an ASGI app; storage and the providers' HTTP session open when it starts.

    Raises LookupError at once if the topology gave billing no address for a provider.
    """
    provider_urls = {
        name: settings.upstream(name)[0]
        for name in (settings.primary_provider, settings.backup_provider)
    }

    async def wire(app: FastAPI) -> None:
        database: chassis.Database = app.state.database
        uow_factory: UnitOfWorkFactory = partial(
            SqlAlchemyUnitOfWork,
            database.sessionmaker,
            snapshot_every=settings.ledger_snapshot_every,
        )
        app.state.uow_factory = uow_factory
        app.state.ledger_attempts = settings.ledger_attempts
        app.state.idempotency_lease = timedelta(seconds=settings.idempotency_lease)
        # One pooled session for the process: a session per call leaks connections.
        session = http_session()
        app.state.http_session = session
        app.state.providers = providers = tuple(
            HttpPaymentProvider(
                name,
                url,
                session,
                timeout=settings.provider_timeout,
                resilience=app.state.resilience,
            )
            for name, url in provider_urls.items()
        )
        reconciliation.start(uow_factory, providers)

    reconciliation = Reconciliation(
        interval=settings.reconcile_interval,
        settle_after=timedelta(seconds=settings.settle_after),
    )

    async def stop_reconciling(_: FastAPI) -> None:
        await reconciliation.stop()

    async def close_http_session(app: FastAPI) -> None:
        # Shutdown hooks also run after a failed start, before the session existed.
        session: aiohttp.ClientSession | None = getattr(app.state, "http_session", None)
        if session is not None:
            await session.close()

    app = chassis.create_app(
        settings,
        title="Souk billing",
        description=(
            "Payments for Souk orders: authorize, capture, void and refund through external "
            "payment providers, failing over from the primary to the backup. Customers' "
            "store-credit accounts: an event-sourced ledger of credits and debits whose "
            "balance never goes below zero."
        ),
        routers=[router, accounts.router],
        migrations=MIGRATIONS,
        on_startup=[wire],
        on_shutdown=[close_http_session, stop_reconciling],
        messaging=Messaging(settings),
    )
    app.add_exception_handler(BillingError, billing_problem)
    return app
