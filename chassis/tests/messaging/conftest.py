from __future__ import annotations

import importlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest

from .backends import NAMES, BrokerServer

if TYPE_CHECKING:
    from chassis.messaging import MessageBus


@pytest.fixture(scope="session", params=NAMES)
def broker_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrokerServer]:
    module = importlib.import_module(f"{__package__}.backends.{request.param}")
    with module.serve(tmp_path_factory) as server:
        yield server


@pytest.fixture
async def bus_url(broker_server: BrokerServer) -> AsyncIterator[str]:
    """A URL on the broker under test, in a namespace of this test's own."""
    namespace = f"t{uuid.uuid4().hex[:10]}"
    yield broker_server.url(namespace)
    await broker_server.forget(namespace)


@pytest.fixture
async def restartable_bus_url(broker_server: BrokerServer) -> AsyncIterator[str]:
    """Like ``bus_url``, on the broker that ``broker_server.restart()`` restarts.

    A backend whose suite runs on a shared server of the machine, not the tests' to restart,
    has ``restartable_url(namespace)`` naming a private server; the others restart their own.
    """
    namespace = f"t{uuid.uuid4().hex[:10]}"
    url = getattr(broker_server, "restartable_url", broker_server.url)
    yield url(namespace)
    await broker_server.forget(namespace)


@pytest.fixture
async def open_bus(bus_url: str) -> AsyncIterator[object]:
    """``await open_bus()`` → a started bus on ``bus_url``; every one is closed after the test."""
    from chassis.messaging import connect  # noqa: PLC0415

    buses: list[MessageBus] = []

    async def _open(url: str = bus_url) -> MessageBus:
        bus = connect(url)
        await bus.start()
        buses.append(bus)
        return bus

    yield _open
    for bus in buses:
        await bus.close()
