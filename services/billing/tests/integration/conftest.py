"""Two real payment providers served on loopback ports, and billing on SQLite in front of them."""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import uvicorn

from billing.adapters.unit_of_work import SqlAlchemyUnitOfWork
from billing.app import MIGRATIONS, create_app
from billing.settings import BillingSettings
from chassis import Database
from chassis.testing import ReadableTokens, readable_bearer
from payment_provider.app import create_app as create_provider_app
from payment_provider.settings import ProviderSettings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from fastapi import FastAPI

# Above the 400 ms the slow-but-in-time tests use, with room for a loaded CI machine.
PROVIDER_TIMEOUT = 1.0
# What orders' client token grants: billing's callers are services, not customers.
ORDERS_TOKEN = readable_bearer("orders", "payments:write", "payments:read")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LoopbackServer:
    """An ASGI app served by uvicorn on a loopback port, in the test's own event loop."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, app: FastAPI) -> None:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, lifespan="on"
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
            self._server = self._task = None


class SimulatedProvider:
    """A payment provider simulator on a loopback port, which a test can misconfigure or stop."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._server = LoopbackServer()
        self.url = self._server.url

    async def start(self) -> None:
        settings = ProviderSettings(service=self.service, instance=f"{self.service}-test")
        await self._server.start(create_provider_app(settings))

    async def stop(self) -> None:
        await self._server.stop()

    async def restart(self) -> None:
        """Stop and start again: a new process that has forgotten every authorization."""
        await self.stop()
        await self.start()

    async def simulate(self, **controls: Any) -> None:
        async with httpx.AsyncClient(base_url=self.url) as client:
            response = await client.put("/v1/simulation", json=controls)
        assert response.status_code == 200, response.text

    async def authorizations_for(self, reference: str) -> list[dict[str, Any]]:
        """What this provider holds for one of billing's payments (its reference)."""
        async with httpx.AsyncClient(base_url=self.url) as client:
            response = await client.get("/v1/authorizations", params={"reference": reference})
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()
        return found

    async def authorization(self, authorization_id: str) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.url) as client:
            response = await client.get(f"/v1/authorizations/{authorization_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
async def providers() -> AsyncIterator[tuple[SimulatedProvider, SimulatedProvider]]:
    """The primary and the backup, started and stopped together."""
    both = (SimulatedProvider("payment-primary"), SimulatedProvider("payment-backup"))
    await asyncio.gather(*(provider.start() for provider in both))
    yield both
    await asyncio.gather(*(provider.stop() for provider in both))


@pytest.fixture
def primary(providers: tuple[SimulatedProvider, SimulatedProvider]) -> SimulatedProvider:
    return providers[0]


@pytest.fixture
def backup(providers: tuple[SimulatedProvider, SimulatedProvider]) -> SimulatedProvider:
    return providers[1]


@pytest.fixture
def settings(
    tmp_path: Path, primary: SimulatedProvider, backup: SimulatedProvider
) -> BillingSettings:
    return BillingSettings(
        data_dir=tmp_path,
        instance="billing-test",
        provider_timeout=PROVIDER_TIMEOUT,
        upstreams={"payment-primary": [primary.url], "payment-backup": [backup.url]},
    )


@pytest.fixture
async def billing_app(settings: BillingSettings) -> AsyncIterator[FastAPI]:
    """Billing, started (migrated, with its HTTP session open), judging tokens with
    ReadableTokens."""
    app = create_app(settings)
    app.state.token_validator = ReadableTokens()
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def billing(billing_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Billing as orders calls it: an in-process client sending orders' token."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=billing_app),
        base_url="http://billing",
        headers=ORDERS_TOKEN,
    ) as client:
        yield client


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    """An empty billing database, migrated to head."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'billing.db'}", migrations=MIGRATIONS)
    await database.migrate()
    yield database
    await database.dispose()


@pytest.fixture
def uow(database: Database) -> SqlAlchemyUnitOfWork:
    return SqlAlchemyUnitOfWork(database.sessionmaker)
