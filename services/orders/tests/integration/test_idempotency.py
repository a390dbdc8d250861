"""One Idempotency-Key places one order, however many requests race with it."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Self

import httpx

from chassis import Database
from orders.adapters.unit_of_work import SqlAlchemyUnitOfWork
from orders.app import MIGRATIONS, Upstreams
from orders.service_layer.handlers import place_order
from orders.settings import OrdersSettings
from services.orders.tests.conftest import TEA, bearer
from services.orders.tests.integration.conftest import order_body, orders_app
from services.orders.tests.unit.conftest import place_command

if TYPE_CHECKING:
    from pathlib import Path

    from orders.service_layer.ports import IdempotencyRecord


async def test_concurrent_posts_with_one_key_to_two_replicas_place_one_order(
    tmp_path: Path, upstreams: Upstreams
) -> None:
    apps = [
        orders_app(
            OrdersSettings(data_dir=tmp_path, instance=f"orders-{n}", shutdown_timeout=0.2),
            upstreams,
        )
        for n in (1, 2)
    ]
    clients = [
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://orders", headers=bearer()
        )
        for app in apps
    ]
    lifespans = [app.router.lifespan_context(app) for app in apps]
    await asyncio.gather(*(lifespan.__aenter__() for lifespan in lifespans))
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    body = order_body((TEA.product_id, 1))
    try:
        responses = await asyncio.gather(
            *(clients[n % 2].post("/orders", json=body, headers=headers) for n in range(6))
        )
        listing = (await clients[0].get("/orders")).json()
    finally:
        for lifespan in lifespans:
            await lifespan.__aexit__(None, None, None)
        for client in clients:
            await client.aclose()

    assert sorted(r.status_code for r in responses) == [200, 200, 200, 200, 200, 201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert listing["total"] == 1


class LookupsMeet(SqlAlchemyUnitOfWork):
    """Holds each request after its first key lookup until the other has looked too, so
    both find the key free and both try to store it: the race, every time."""

    def __init__(self, database: Database, barrier: asyncio.Barrier) -> None:
        super().__init__(database.sessionmaker)
        self._barrier: asyncio.Barrier | None = barrier

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        lookup = self.idempotency_keys.get

        async def meet_after_lookup(key: str) -> IdempotencyRecord | None:
            record = await lookup(key)
            if self._barrier is not None:
                barrier, self._barrier = self._barrier, None
                await barrier.wait()
            return record

        self.idempotency_keys.get = meet_after_lookup  # type: ignore[method-assign]
        return self


async def test_of_two_requests_that_both_found_the_key_free_the_second_replays_the_first(
    tmp_path: Path,
) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'orders.db'}", migrations=MIGRATIONS)
    await database.migrate()
    barrier = asyncio.Barrier(2)
    command = place_command((TEA.product_id, 1))
    try:
        placements = await asyncio.gather(
            place_order(command, LookupsMeet(database, barrier)),
            place_order(command, LookupsMeet(database, barrier)),
        )
        async with SqlAlchemyUnitOfWork(database.sessionmaker) as uow:
            _, total = await uow.orders.for_customer("c-1", offset=0, limit=10)
    finally:
        await database.dispose()

    assert sorted(p.replayed for p in placements) == [False, True]
    assert placements[0].order.id == placements[1].order.id
    assert total == 1
