"""Composition root: identity's routes on the chassis, wired to SQLAlchemy, argon2 and joserfc."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import chassis
from chassis.problems import problem_response
from identity.adapters.jose import JoserfcSigner
from identity.adapters.passwords import Argon2Passwords
from identity.adapters.unit_of_work import SqlAlchemyUnitOfWork
from identity.domain.errors import OAuthError, PasswordChecksBusy
from identity.entrypoints import accounts, discovery, oauth
from identity.entrypoints.deps import Identity
from identity.service_layer import keys
from identity.service_layer.clients import Registration, register_clients
from identity.service_layer.oauth import AuthorizationServer, TokenPolicy, utc_now
from identity.service_layer.throttle import SignInThrottle

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from fastapi import FastAPI, Request
    from starlette.responses import JSONResponse

    from identity.service_layer.ports import UnitOfWork
    from identity.settings import IdentitySettings

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: IdentitySettings, *, clock: Callable[[], datetime] = utc_now) -> FastAPI:
    """Identity as an ASGI app: it registers its clients and keys once the DB is migrated."""

    def unit_of_work() -> UnitOfWork:
        # The database opens at start-up, before the routes are first used.
        database: chassis.Database = app.state.database
        return SqlAlchemyUnitOfWork(database.sessionmaker)

    passwords = Argon2Passwords(
        time_cost=settings.password_time_cost,
        memory_cost_kib=settings.password_memory_kib,
        max_concurrent=settings.password_max_concurrent,
        max_waiting=settings.password_max_waiting,
    )
    signer = JoserfcSigner()
    policy = TokenPolicy(
        issuer=settings.issuer,
        audience=settings.audience,
        access_token_ttl=timedelta(seconds=settings.access_token_ttl_seconds),
        refresh_token_ttl=timedelta(seconds=settings.refresh_token_ttl_seconds),
        code_ttl=timedelta(seconds=settings.code_ttl_seconds),
    )

    async def register_clients_and_keys(app: FastAPI) -> None:
        database: chassis.Database = app.state.database
        # Replicas start together: one at a time registers, so they agree on one key set.
        async with database.startup_lock():
            await register_clients(unit_of_work(), passwords, _registrations(settings))
            await keys.ensure_keys(unit_of_work(), signer, clock())

    app = chassis.create_app(
        settings,
        title="Souk identity",
        description="Accounts, and the OAuth 2 authorization server whose signed access "
        "tokens the gateway and every service check.",
        routers=[accounts.router, discovery.router, oauth.router],
        migrations=MIGRATIONS,
        on_startup=[register_clients_and_keys],
    )
    app.add_exception_handler(OAuthError, oauth.oauth_error_response)
    app.add_exception_handler(PasswordChecksBusy, _busy)
    app.state.identity = Identity(
        settings=settings,
        uow=unit_of_work,
        passwords=passwords,
        signer=signer,
        server=AuthorizationServer(unit_of_work, passwords, signer, policy, clock),
        clock=clock,
        throttle=SignInThrottle(clock),
    )
    return app


async def _busy(_: Request, error: Exception) -> JSONResponse:
    return problem_response(
        503, "password-checks-busy", "Service Unavailable", str(error), headers={"Retry-After": "1"}
    )


def _registrations(settings: IdentitySettings) -> list[Registration]:
    return [
        Registration(
            client_id=client.client_id,
            name=client.name,
            secret=client.secret.get_secret_value() if client.secret else None,
            scopes=frozenset(client.scopes),
            redirect_uris=tuple(client.redirect_uris),
        )
        for client in settings.clients
    ]
