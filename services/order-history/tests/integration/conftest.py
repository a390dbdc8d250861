"""Order-history on a real database (a SQLite file, or a scratch PostgreSQL database), the app
listening to an embedded bus, and a fake of the access-token validator."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from chassis import Database, testing
from chassis.messaging import connect
from chassis.testing import ReadableTokens, readable_bearer
from order_history.adapters.unit_of_work import SqlAlchemyUnitOfWork
from order_history.app import MIGRATIONS, create_app
from order_history.settings import OrderHistorySettings
from souk.testing import scratch_database

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from pathlib import Path

    from chassis.messaging import MessageBus


def bearer(subject: str, *scopes: str) -> dict[str, str]:
    """A customer's token (orders:read and orders:write) unless scopes are given."""
    return readable_bearer(subject, *(scopes or ("orders:read", "orders:write")))


@pytest.fixture(params=["sqlite", "postgres"])
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with scratch_database(request.param, tmp_path, "order-history") as found:
        yield found


@pytest.fixture
async def database(url: str) -> AsyncIterator[Database]:
    """An empty order-history database, migrated to head."""
    database = Database(url, migrations=MIGRATIONS)
    await database.migrate()
    yield database
    await database.dispose()


@pytest.fixture
def uow(database: Database) -> SqlAlchemyUnitOfWork:
    return SqlAlchemyUnitOfWork(database.sessionmaker)


@pytest.fixture
def broker_url(tmp_path: Path) -> str:
    return f"embedded://{tmp_path / 'broker'}"


@pytest.fixture
async def order_history(
    tmp_path: Path, url: str, broker_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    """Order-history, started and subscribed to the bus, as an in-process client."""
    settings = OrderHistorySettings(
        data_dir=tmp_path,
        instance="order-history-test",
        database_url=url,
        broker_url=broker_url,
        shutdown_timeout=1,
    )
    app = create_app(settings)
    app.state.token_validator = ReadableTokens(client_id="souk-web")
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://order-history"
        ) as client,
    ):
        # A group gets what is published after it first subscribed: wait for that.
        await eventually(lambda: ready(client))
        yield client


@pytest.fixture
async def bus(broker_url: str) -> AsyncIterator[MessageBus]:
    """Another connection to the same broker, as orders, billing, inventory or catalog have."""
    bus = connect(broker_url)
    await bus.start()
    yield bus
    await bus.close()


async def ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/readyz")).status_code == 200


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 20.0) -> None:
    """``chassis.testing.eventually`` with the patience a rebuild or a start-up needs here."""
    await testing.eventually(check, within)
