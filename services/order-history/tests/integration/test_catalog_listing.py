"""The catalog's listing read over REST from a stand-in catalog that serves pages of products."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiohttp import web

from chassis.upstream import HttpUpstream, UpstreamFailure
from contracts import Money
from contracts.events import ProductCreated, ProductUpdated
from order_history.adapters import catalog as catalog_adapter
from order_history.adapters.catalog import HttpCatalog
from order_history.adapters.unit_of_work import SqlAlchemyUnitOfWork
from order_history.app import create_app
from order_history.settings import OrderHistorySettings

from .conftest import eventually

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from chassis import Database

PRODUCTS = [
    {
        "id": f"p-{n}",
        "sku": f"SKU-{n}",
        "name": f"Product {n}",
        "description": "",
        "category": "spices",
        "price": {"amount": 100 * n, "currency": "EUR"},
        "version": 1 if n % 2 else 2,
    }
    for n in range(1, 6)
]


async def catalog_app(products: list[Any]) -> web.Application:
    async def listing(request: web.Request) -> web.Response:
        page, size = int(request.query["page"]), int(request.query["page_size"])
        items = products[(page - 1) * size : page * size]
        pages = -(-len(products) // size)
        return web.json_response(
            {
                "items": items,
                "page": page,
                "page_size": size,
                "total": len(products),
                "pages": pages,
            }
        )

    app = web.Application()
    app.router.add_get("/products", listing)
    return app


@pytest.fixture
async def listing_of(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    """A function serving ``products`` as a catalog and giving the HttpCatalog reading it."""
    monkeypatch.setattr(catalog_adapter, "PAGE_SIZE", 2)  # three pages for five products
    runners: list[web.AppRunner] = []
    session = aiohttp.ClientSession()

    async def serve(products: list[Any]) -> HttpCatalog:
        runner = web.AppRunner(await catalog_app(products))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        upstream = HttpUpstream(
            "catalog", [f"http://127.0.0.1:{port}"], session, timeout=5, connect_timeout=1
        )
        return HttpCatalog(upstream)

    yield serve
    await session.close()
    for runner in runners:
        await runner.cleanup()


async def test_every_page_is_read_and_each_product_is_its_versions_event(listing_of: Any) -> None:
    products = await (await listing_of(PRODUCTS)).products()

    assert [p.product_id for p in products] == ["p-1", "p-2", "p-3", "p-4", "p-5"]
    first, second = products[:2]
    assert isinstance(first, ProductCreated)
    assert (first.sku, first.name, first.price, first.version) == (
        "SKU-1",
        "Product 1",
        Money(100, "EUR"),
        1,
    )
    assert isinstance(second, ProductUpdated)
    assert (second.version, second.changed) == (2, ())


async def test_an_empty_catalog_lists_nothing(listing_of: Any) -> None:
    assert await (await listing_of([])).products() == []


async def test_a_listing_that_is_not_products_is_an_upstream_failure(listing_of: Any) -> None:
    broken = await listing_of([{"id": "p-1", "name": "no sku, no price"}])

    with pytest.raises(UpstreamFailure, match="unexpectedly"):
        await broken.products()


async def test_order_history_learns_the_catalog_once_subscribed_at_start_up(
    tmp_path: Path, url: str, broker_url: str
) -> None:
    runner = web.AppRunner(await catalog_app(PRODUCTS))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    settings = OrderHistorySettings(
        data_dir=tmp_path,
        instance="order-history-test",
        database_url=url,
        broker_url=broker_url,
        upstreams={"catalog": [f"http://127.0.0.1:{runner.addresses[0][1]}"]},
        shutdown_timeout=1,
    )
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            database: Database = app.state.database

            async def learnt() -> bool:
                async with SqlAlchemyUnitOfWork(database.sessionmaker) as uow:
                    return len(await uow.products.some(p["id"] for p in PRODUCTS)) == 5

            await eventually(learnt)
    finally:
        await runner.cleanup()
