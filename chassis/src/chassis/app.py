"""``create_app``: one call that turns a service's routers into a Souk process."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI

from chassis import health
from chassis.head import HeadAsGetMiddleware
from chassis.health import Readiness, ReadinessCheck
from chassis.logs import configure_logging, get_logger
from chassis.metrics import HttpMetrics, metrics_endpoint
from chassis.middleware import RequestContextMiddleware
from chassis.openapi import document_as_answered
from chassis.problems import install_problem_handlers
from chassis.resilience.composition import install_resilience
from chassis.tracing import build_tracer_provider

if TYPE_CHECKING:
    from pathlib import Path

    from chassis.auth import TokenValidator
    from chassis.db import Database
    from chassis.messaging.lifecycle import Messaging
    from chassis.settings import ServiceSettings

LifecycleHook = Callable[[FastAPI], Awaitable[None]]
"""``async def hook(app) -> None``, run at start-up (in order) or shutdown (in reverse)."""

_log = get_logger("chassis.app")


def create_app(  # noqa: PLR0915 - the composition root reads best as one list of parts
    settings: ServiceSettings,
    *,
    title: str,
    version: str = "0.1.0",
    description: str = "",
    routers: Sequence[APIRouter] = (),
    migrations: Path | None = None,
    on_startup: Sequence[LifecycleHook] = (),
    on_shutdown: Sequence[LifecycleHook] = (),
    readiness_checks: Mapping[str, ReadinessCheck] | None = None,
    messaging: Messaging | None = None,
) -> FastAPI:
    """Build a FastAPI app with logs, tracing, metrics, health, problems and (optionally) a DB.

    With ``migrations``, a :class:`Database` is opened at start-up, migrated to head and
    kept on ``app.state.database``; ``on_startup`` hooks run after that. With
    ``settings.auth_issuer`` set, ``app.state.token_validator`` checks access tokens for
    routes that declare ``chassis.auth.require_scopes``. With ``messaging``
    (which needs ``migrations`` that create the messaging tables), the outbox relay and the
    consumers start after the migrations and stop after the ``on_shutdown`` hooks.
    """
    if messaging is not None and migrations is None:
        raise ValueError("messaging keeps its outbox, inbox and dead letters in a database")
    configure_logging(settings)
    tracer_provider = build_tracer_provider(settings)
    readiness = Readiness()
    for name, check in (readiness_checks or {}).items():
        readiness.add(name, check)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _log.info("starting", port=settings.port)
        readiness.started = readiness.draining = False
        database: Database | None = None
        built_validator: TokenValidator | None = None
        try:
            if migrations is not None:
                # Imported here: a process without a database never loads SQLAlchemy.
                from chassis.db import Database  # noqa: PLC0415

                database = Database(settings.database_url_or_default(), migrations=migrations)
                app.state.database = database
                if settings.migrate == "at-start":
                    await database.migrate()
                readiness.add("database", database.check)
            if messaging is not None and database is not None:
                await messaging.start(database)
                readiness.add("messaging", messaging.check)
            built_validator = _install_token_validator(app, settings)
            for hook in on_startup:
                await hook(app)
            readiness.started = True
            _log.info("ready", port=settings.port)
            yield
        finally:
            readiness.draining = True
            for hook in reversed(on_shutdown):
                await hook(app)
            if messaging is not None:
                await messaging.stop(settings.shutdown_timeout)
            if built_validator is not None:
                await built_validator.close()
            if database is not None:
                await database.dispose()
            tracer_provider.shutdown()
            _log.info("stopped")

    # No redirect to the path without its trailing slash: the redirect named this instance's
    # own address, which a client outside the gateway must never see (a 404 problem instead).
    app = FastAPI(
        title=title,
        version=version,
        description=description,
        lifespan=lifespan,
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.readiness = readiness
    app.state.migrations = migrations
    app.state.http_metrics = metrics = HttpMetrics.create()
    install_problem_handlers(app)
    app.include_router(health.router)
    app.add_api_route("/metrics", metrics_endpoint, include_in_schema=False)
    for router in routers:
        app.include_router(router)
    if messaging is not None:
        from chassis.messaging import routes as dead_letter_routes  # noqa: PLC0415 - as Database

        app.state.messaging = messaging
        app.include_router(dead_letter_routes.router)
    app.add_middleware(
        RequestContextMiddleware,
        tracer=tracer_provider.get_tracer(settings.service),
        metrics=metrics,
        instance=settings.instance_id,
    )
    install_resilience(app, settings)
    document_as_answered(app)
    # Outermost: every layer inside sees the GET a HEAD stands for.
    app.add_middleware(HeadAsGetMiddleware)
    return app


def _install_token_validator(app: FastAPI, settings: ServiceSettings) -> TokenValidator | None:
    """Put the configured issuer's validator on ``app.state`` unless a test injected one.

    Built at start-up, in the event loop its JWKS session lives in; returned to be closed.
    """
    built = None
    if settings.auth_issuer is not None:
        # Imported here: a process that checks no tokens (the console, the simulators) never
        # loads the JOSE and HTTP client libraries.
        from chassis.auth import issuer_validator  # noqa: PLC0415

        built = issuer_validator(settings)
    if getattr(app.state, "token_validator", None) is None:
        app.state.token_validator = built
    return built
