"""A real, migrated SQLite inventory in tmp_path, and the real app serving HTTP and gRPC."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
import httpx
import pytest

from chassis import Database
from chassis.grpc import grpc_target
from chassis.testing import ReadableTokens, readable_bearer
from contracts.inventory.v1.inventory_pb2_grpc import InventoryStub
from inventory.adapters.unit_of_work import SqlAlchemyUnitOfWork
from inventory.app import MIGRATIONS, create_app
from inventory.settings import InventorySettings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from pathlib import Path

    from fastapi import FastAPI


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    """An empty inventory database, migrated to head."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'inventory.db'}", migrations=MIGRATIONS)
    await database.migrate()
    yield database
    await database.dispose()


@pytest.fixture
def uow(database: Database) -> SqlAlchemyUnitOfWork:
    return SqlAlchemyUnitOfWork(database.sessionmaker)


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., InventorySettings]:
    """Settings of one replica: its own free gRPC port, the shared data dir, quick to stop."""

    def make(**overrides: Any) -> InventorySettings:
        fields: dict[str, Any] = {
            "data_dir": tmp_path,
            "instance": "inventory-1",
            "grpc_port": 0,
            "shutdown_timeout": 1,
        }
        return InventorySettings(**(fields | overrides))

    return make


# What orders' client token grants.
ORDERS_TOKEN = readable_bearer("orders", "stock:read", "stock:write")["Authorization"]


class OrdersToken(grpc.aio.UnaryUnaryClientInterceptor):
    """Sends orders' token with every call that does not bring its own."""

    async def intercept_unary_unary(
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        metadata = grpc.aio.Metadata(*(client_call_details.metadata or ()))
        if "authorization" not in metadata.keys():  # noqa: SIM118 - `in` on Metadata is typed by item
            metadata["authorization"] = ORDERS_TOKEN
        details = grpc.aio.ClientCallDetails(
            client_call_details.method,
            client_call_details.timeout,
            metadata,
            client_call_details.credentials,
            client_call_details.wait_for_ready,
        )
        return await continuation(details, request)


@dataclass
class Replicas:
    """Started apps, an HTTP client for each, and one gRPC channel balanced over them all
    that calls with orders' token."""

    apps: list[FastAPI]
    http: list[httpx.AsyncClient]
    channel: grpc.aio.Channel
    urls: list[str]

    @property
    def stub(self) -> Any:
        # The generated stub is untyped; its methods return awaitable calls of the messages.
        return InventoryStub(self.channel)


@pytest.fixture
def serve() -> Callable[..., contextlib.AbstractAsyncContextManager[Replicas]]:
    """``async with serve(settings, ...) as replicas``: start the apps together, then stop them."""

    @contextlib.asynccontextmanager
    async def start(*settings: InventorySettings) -> AsyncIterator[Replicas]:
        apps = [create_app(s) for s in settings]
        for app in apps:
            app.state.token_validator = ReadableTokens()
        async with contextlib.AsyncExitStack() as stack:
            await _start_together(stack, [app.router.lifespan_context(app) for app in apps])
            http = [
                await stack.enter_async_context(
                    httpx.AsyncClient(
                        transport=httpx.ASGITransport(app=app), base_url="http://inventory"
                    )
                )
                for app in apps
            ]
            urls = [f"grpc://127.0.0.1:{app.state.grpc_server.port}" for app in apps]
            channel = await stack.enter_async_context(
                grpc.aio.insecure_channel(
                    grpc_target(urls),
                    options=[("grpc.lb_policy_name", "round_robin")],
                    interceptors=[OrdersToken()],
                )
            )
            yield Replicas(apps=apps, http=http, channel=channel, urls=urls)

    return start


async def _start_together(
    stack: contextlib.AsyncExitStack,
    lifespans: list[contextlib.AbstractAsyncContextManager[None]],
) -> None:
    # Entered at once, so migrations and seeding race for the start-up lock as replicas do.
    await asyncio.gather(*(lifespan.__aenter__() for lifespan in lifespans))
    for lifespan in lifespans:
        stack.push_async_exit(lifespan)


@pytest.fixture
async def inventory(
    serve: Callable[..., contextlib.AbstractAsyncContextManager[Replicas]],
    make_settings: Callable[..., InventorySettings],
) -> AsyncIterator[Replicas]:
    """One inventory app, started with the demo stock."""
    async with serve(make_settings()) as replicas:
        yield replicas


@pytest.fixture
def refused() -> Callable[[Awaitable[Any], grpc.StatusCode], Awaitable[str]]:
    """``await refused(call, code)``: the call must fail with ``code``; returns its details."""

    async def check(call: Awaitable[Any], code: grpc.StatusCode) -> str:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == code, caught.value.details()
        return caught.value.details() or ""

    return check
