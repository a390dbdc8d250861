"""The real orders app on a migrated SQLite file, with fakes for catalog, inventory, billing;
and the real catalog and inventory, started as processes, for the contract tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi.testclient import TestClient

from chassis import Database
from chassis.testing import ReadableTokens
from orders.adapters.unit_of_work import SqlAlchemyUnitOfWork
from orders.app import MIGRATIONS, Upstreams, create_app
from orders.settings import OrdersSettings
from services.orders.tests.conftest import GOOD_CARD, bearer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator, Mapping
    from pathlib import Path

    from fastapi import FastAPI
    from httpx import Response

    from services.orders.tests.conftest import FakeBilling, FakeCatalog, FakeInventory

PROBLEM = "application/problem+json"


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    """An empty orders database, migrated to head."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'orders.db'}", migrations=MIGRATIONS)
    await database.migrate()
    yield database
    await database.dispose()


@pytest.fixture
def uow(database: Database) -> SqlAlchemyUnitOfWork:
    return SqlAlchemyUnitOfWork(database.sessionmaker)


@pytest.fixture
def settings(tmp_path: Path) -> OrdersSettings:
    """Two tries per step without waiting, a short stop."""
    return OrdersSettings(
        data_dir=tmp_path,
        instance="orders-test",
        shutdown_timeout=0.2,
        retry_attempts=2,
        retry_base_delay=0,
        retry_max_delay=0,
    )


@pytest.fixture
def upstreams(catalog: FakeCatalog, inventory: FakeInventory, billing: FakeBilling) -> Upstreams:
    return Upstreams(catalog=catalog, inventory=inventory, billing=billing)


def orders_app(settings: OrdersSettings, upstreams: Upstreams | None = None) -> FastAPI:
    """The orders app, judging access tokens with ReadableTokens."""
    app = create_app(settings, upstreams=upstreams)
    app.state.token_validator = ReadableTokens(client_id="souk-web")
    return app


@pytest.fixture
def client(settings: OrdersSettings, upstreams: Upstreams) -> Iterator[TestClient]:
    """The orders app, started: migrated, its saga taking commands from the bus.

    Its requests carry the token of customer c-1, with orders:read and orders:write.
    """
    with TestClient(orders_app(settings, upstreams), headers=bearer()) as client:
        yield client


def order_body(*items: tuple[str, int], card_token: str = GOOD_CARD) -> dict[str, Any]:
    return {
        "items": [{"product_id": product, "quantity": quantity} for product, quantity in items],
        "payment": {"card_token": card_token},
    }


def post_order(
    client: TestClient,
    body: dict[str, Any],
    key: str | None = None,
    *,
    auth: Mapping[str, str] | None = None,
) -> Response:
    """POST the order under ``key`` (a new one by default), as ``auth`` if given."""
    headers = {"Idempotency-Key": key or str(uuid.uuid4()), **(auth or {})}
    return client.post("/orders", json=body, headers=headers)


def settled(client: TestClient, order_id: str) -> dict[str, Any]:
    """The order once its checkout has nothing left to do."""
    return _when(
        client, order_id, lambda o: o["status"] != "PENDING" and not o["compensations_pending"]
    )


def stuck(client: TestClient, order_id: str) -> dict[str, Any]:
    """The order once its checkout has given up for now."""
    return _when(client, order_id, lambda o: o["last_error"] is not None)


def _when(
    client: TestClient, order_id: str, condition: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        order: dict[str, Any] = client.get(f"/orders/{order_id}").json()
        if condition(order):
            return order
        if time.monotonic() > deadline:
            raise AssertionError(f"order {order_id} never reached the awaited state: {order}")
        time.sleep(0.01)


def problem_of(response: Response, status: int, problem_type: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["type"] == f"https://souk.dev/problems/{problem_type}"
    return body


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def service_process(
    module: str, env: Mapping[str, str], ready_url: str, log: Path
) -> Iterator[None]:
    """``python -m <module>`` with ``env`` added, once it answers ``ready_url``; it is
    stopped by its pid (SIGTERM, then SIGKILL) when the block ends."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", module],
            env={**os.environ, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while not _answers(ready_url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{module} did not become ready:\n{log.read_text()[-4000:]}")
            time.sleep(0.1)
        yield
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False
