"""Restarts and replicas sharing one SQLite file agree on one catalog, seeded once."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import httpx
import pytest
from fastapi.testclient import TestClient

from catalog.adapters.demo_catalog import load_demo_catalog
from catalog.settings import CatalogSettings
from services.catalog.tests.integration.conftest import ADMIN, catalog_app
from souk.testing import scratch_database

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

DEMO_SIZE = len(load_demo_catalog().products)


def test_the_demo_catalog_is_served_with_sixty_or_more_products_in_six_or_more_categories(
    client: TestClient,
) -> None:
    categories = client.get("/categories").json()

    assert client.get("/products").json()["total"] == DEMO_SIZE >= 60
    assert len([c for c in categories if c["product_count"] > 0]) >= 6


def test_a_restart_does_not_seed_the_demo_catalog_twice(settings: CatalogSettings) -> None:
    for _ in range(2):
        with TestClient(catalog_app(settings)) as client:
            assert client.get("/products").json()["total"] == DEMO_SIZE


def test_without_demo_data_the_catalog_starts_empty_but_with_its_categories(
    tmp_path: Path,
) -> None:
    settings = CatalogSettings(data_dir=tmp_path, seed_demo_data=False)

    with TestClient(catalog_app(settings)) as client:
        assert client.get("/products").json()["total"] == 0
        assert len(client.get("/categories").json()) >= 6
        assert client.get("/readyz").status_code == 200


async def test_two_replicas_on_one_sqlite_file_both_start_and_agree(tmp_path: Path) -> None:
    apps = [
        catalog_app(CatalogSettings(data_dir=tmp_path, instance=f"catalog-{n}")) for n in (1, 2)
    ]
    clients = [
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://catalog", headers=ADMIN
        )
        for app in apps
    ]
    lifespans = [app.router.lifespan_context(app) for app in apps]

    # Started together, so migrations and seeding race for the start-up lock.
    await asyncio.gather(*(lifespan.__aenter__() for lifespan in lifespans))
    try:
        listings = [(await c.get("/products", params={"page_size": 100})).json() for c in clients]
        created = await clients[0].post(
            "/products",
            json={
                "sku": "TEX-FOUTA-BLUE",
                "name": "Blue fouta",
                "category": "textiles",
                "price": {"amount": 2400, "currency": "EUR"},
            },
        )
        seen_by_other = await clients[1].get(f"/products/{created.json()['id']}")
        ready = [(await c.get("/readyz")).status_code for c in clients]
    finally:
        for lifespan in lifespans:
            await lifespan.__aexit__(None, None, None)
        for client in clients:
            await client.aclose()

    assert listings[0] == listings[1]
    assert listings[0]["total"] == DEMO_SIZE
    assert created.status_code == 201
    assert seen_by_other.json() == created.json()
    assert ready == [200, 200]


@pytest.fixture(params=["sqlite", "postgres"])
async def two_replicas(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Two started catalog apps sharing one database, each behind its own client."""
    async with scratch_database(request.param, tmp_path, "catalog") as url:
        apps = [
            catalog_app(
                CatalogSettings(data_dir=tmp_path, database_url=url, instance=f"catalog-{n}")
            )
            for n in (1, 2)
        ]
        async with contextlib.AsyncExitStack() as stack:
            for app in apps:
                await stack.enter_async_context(app.router.lifespan_context(app))
            yield [
                await stack.enter_async_context(
                    httpx.AsyncClient(
                        transport=httpx.ASGITransport(app=app),
                        base_url="http://catalog",
                        headers=ADMIN,
                    )
                )
                for app in apps
            ]


async def test_a_patch_on_one_replica_is_read_at_once_on_the_other_with_the_new_etag(
    two_replicas: list[httpx.AsyncClient],
) -> None:
    first, second = two_replicas
    product = (await second.get("/products", params={"page_size": 1})).json()["items"][0]
    before = await second.get(f"/products/{product['id']}")  # the other replica read it first

    patched = await first.patch(
        f"/products/{product['id']}",
        json={"name": "Renamed on the first replica"},
        headers={"If-Match": before.headers["etag"]},
    )
    after = await second.get(f"/products/{product['id']}")
    listed = (await second.get("/products", params={"q": "Renamed on the first"})).json()
    unchanged = await second.get(
        f"/products/{product['id']}", headers={"If-None-Match": before.headers["etag"]}
    )

    assert patched.status_code == 200
    assert after.json() == patched.json()
    assert after.json()["version"] == before.json()["version"] + 1
    assert after.headers["etag"] == patched.headers["etag"] != before.headers["etag"]
    assert [item["id"] for item in listed["items"]] == [product["id"]]
    # The old ETag no longer names what the second replica serves: a full answer, not 304.
    assert unchanged.status_code == 200


async def test_the_read_path_answers_as_the_unit_of_work_on_every_backend(
    two_replicas: list[httpx.AsyncClient],
) -> None:
    first, _ = two_replicas
    listing = (await first.get("/products", params={"page_size": 5, "sort": "-price"})).json()
    spices = (await first.get("/products", params={"category": "spices"})).json()
    categories = (await first.get("/categories")).json()
    missing = await first.get("/products/no-such-product")

    prices = [item["price"]["amount"] for item in listing["items"]]
    assert listing["total"] == DEMO_SIZE
    assert len(prices) == 5
    assert prices == sorted(prices, reverse=True)
    assert spices["total"] == next(c for c in categories if c["slug"] == "spices")["product_count"]
    assert {item["category"] for item in spices["items"]} == {"spices"}
    assert missing.status_code == 404
