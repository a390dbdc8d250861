"""Consumer contract, orders → catalog: the real catalog still serves what orders reads.

The catalog runs as its own process (``python -m catalog``), as in production: orders may
not import it. If the product representation loses a field orders reads, or changes its
type, these tests fail.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
import httpx
import pytest

from chassis.upstream import HttpUpstream
from orders.adapters.catalog_client import CatalogClient
from orders.domain.errors import UnknownProduct
from services.orders.tests.integration.conftest import free_port, service_process

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator


@pytest.fixture(scope="module")
def catalog_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("catalog")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "CATALOG_PORT": str(port),
        "CATALOG_DATA_DIR": str(directory),
        "CATALOG_INSTANCE": "catalog-contract",
    }
    with service_process("catalog", env, f"{url}/readyz", directory / "catalog.log"):
        yield url


@pytest.fixture
async def client(catalog_url: str) -> AsyncIterator[CatalogClient]:
    async with aiohttp.ClientSession() as session:
        yield CatalogClient(
            HttpUpstream("catalog", [catalog_url], session, timeout=5, connect_timeout=1)
        )


def some_product(catalog_url: str) -> dict[str, object]:
    listing = httpx.get(f"{catalog_url}/products", params={"page_size": 1}).json()
    product: dict[str, object] = httpx.get(
        f"{catalog_url}/products/{listing['items'][0]['id']}"
    ).json()
    return product


def test_a_product_has_every_field_orders_reads_with_the_type_orders_expects(
    catalog_url: str,
) -> None:
    product = some_product(catalog_url)

    assert isinstance(product["id"], str)
    assert isinstance(product["sku"], str)
    assert isinstance(product["name"], str)
    price = product["price"]
    assert isinstance(price, dict)
    assert type(price["amount"]) is int
    assert isinstance(price["currency"], str)


async def test_orders_reads_a_product_as_the_catalog_serves_it(
    catalog_url: str, client: CatalogClient
) -> None:
    served = some_product(catalog_url)

    snapshot = await client.product(str(served["id"]))

    assert (snapshot.product_id, snapshot.sku, snapshot.name) == (
        served["id"],
        served["sku"],
        served["name"],
    )
    assert snapshot.price.to_dict() == served["price"]


async def test_a_product_the_catalog_does_not_have_is_unknown_to_orders(
    client: CatalogClient,
) -> None:
    with pytest.raises(UnknownProduct):
        await client.product("no-such-product")
