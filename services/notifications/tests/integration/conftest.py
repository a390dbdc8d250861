"""A migrated notifications database in tmp_path, the app listening to an embedded bus, and
a fake of the access-token validator."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from chassis import Database
from chassis.messaging import connect
from chassis.testing import ReadableTokens, eventually
from notifications.adapters.unit_of_work import SqlAlchemyUnitOfWork
from notifications.app import MIGRATIONS, create_app
from notifications.settings import NotificationsSettings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from chassis.messaging import MessageBus


def bearer(subject: str, *scopes: str) -> dict[str, str]:
    """The Authorization header of a token ReadableTokens reads as ``subject``'s.

    With no scopes, a customer's: orders:read and orders:write.
    """
    granted = scopes or ("orders:read", "orders:write")
    return {"Authorization": f"Bearer {subject};{','.join(granted)}"}


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    """An empty notifications database, migrated to head."""
    database = Database(
        f"sqlite+aiosqlite:///{tmp_path / 'notifications.db'}", migrations=MIGRATIONS
    )
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
async def notifications(tmp_path: Path, broker_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """Notifications, started and subscribed to the bus, as an in-process client."""
    settings = NotificationsSettings(
        data_dir=tmp_path, instance="notifications-test", broker_url=broker_url, shutdown_timeout=1
    )
    app = create_app(settings)
    app.state.token_validator = ReadableTokens(client_id="souk-web")
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://notifications"
        ) as client,
    ):
        # A group gets what is published after it first subscribed: wait for that.
        await eventually(lambda: ready(client))
        yield client


@pytest.fixture
async def bus(broker_url: str) -> AsyncIterator[MessageBus]:
    """Another connection to the same broker, as orders or billing would have."""
    bus = connect(broker_url)
    await bus.start()
    yield bus
    await bus.close()


async def ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/readyz")).status_code == 200
