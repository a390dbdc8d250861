"""Each service keeps its data in its own database, where the topology says."""

from __future__ import annotations

import asyncio

import asyncpg
import yaml


def _database_of(souk) -> dict:
    topology = yaml.safe_load(souk.topology_path.read_text(encoding="utf-8"))
    return topology.get("database") or {"backend": "sqlite"}


async def _count_products(url: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        return int(await connection.fetchval("SELECT count(*) FROM products"))
    finally:
        await connection.close()


def test_the_catalog_keeps_its_products_in_its_own_database(souk, gateway):
    total = gateway.get("/api/catalog/products").json()["total"]
    database = _database_of(souk)
    sqlite_file = souk.data_dir / "catalog.db"
    if database["backend"] == "sqlite":
        assert sqlite_file.is_file()
        return
    assert not sqlite_file.exists()
    url = f"postgresql://postgres@127.0.0.1:5432/{database['prefix']}_catalog"
    assert asyncio.run(_count_products(url)) == total
