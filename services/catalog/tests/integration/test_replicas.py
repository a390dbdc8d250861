"""Restarts and replicas sharing one SQLite file agree on one catalog, seeded once."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import httpx
from fastapi.testclient import TestClient

from catalog.adapters.demo_catalog import load_demo_catalog
from catalog.settings import CatalogSettings
from services.catalog.tests.integration.conftest import ADMIN, catalog_app

if TYPE_CHECKING:
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
