"""The home screen over HTTP: one call, every part; a source down or slow only empties its part."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from .conftest import CATEGORIES, nothing_listening

if TYPE_CHECKING:
    import httpx

    from .conftest import CatalogStandIn, OrdersStandIn


async def test_the_home_answers_every_part_in_one_call_compactly(
    mobile: httpx.AsyncClient, orders: OrdersStandIn
) -> None:
    orders.place("c-1", quantity=1)
    latest = orders.place("c-1", quantity=2)
    await mobile.put("/mobile/cart/items/p-tea", json={"qty": 3})

    response = await mobile.get("/mobile/home")

    assert response.status_code == 200, response.text
    home = response.json()
    assert len(home["featured"]) == 3
    assert {p["cat"] for p in home["featured"]} == {"spices", "tea-coffee", "ceramics"}
    saffron = next(p for p in home["featured"] if p["id"] == "p-saffron")
    assert saffron == {
        "id": "p-saffron",
        "name": "Taliouine saffron threads, 2 g",
        "cat": "spices",
        "price": 1490,
        "cur": "EUR",
    }
    assert home["categories"] == [
        {"slug": c["slug"], "name": c["name"], "n": c["product_count"]} for c in CATEGORIES
    ]
    assert home["cart_count"] == 3
    assert home["latest_order"] == {
        "id": latest,
        "status": "CONFIRMED",
        "total": 2980,
        "cur": "EUR",
        "n": 2,
        "at": "2026-11-25T10:02:00Z",
    }
    assert home["degraded"] == []


async def test_orders_is_asked_with_the_customers_own_token(
    mobile: httpx.AsyncClient, orders: OrdersStandIn
) -> None:
    await mobile.get("/mobile/home")

    [asked] = orders.requests
    assert asked.headers["Authorization"] == "Bearer c-1;orders:read,orders:write"


async def test_with_orders_answering_503_the_home_still_answers_without_the_latest_order(
    mobile: httpx.AsyncClient, orders: OrdersStandIn
) -> None:
    orders.place("c-1")
    orders.down = True

    response = await mobile.get("/mobile/home")

    assert response.status_code == 200
    home = response.json()
    assert (home["latest_order"], home["degraded"]) == (None, ["latest_order"])
    assert len(home["featured"]) == 3


async def test_with_the_catalog_slower_than_its_timeout_the_home_answers_without_it(
    mobile: httpx.AsyncClient, catalog: CatalogStandIn, orders: OrdersStandIn
) -> None:
    catalog.slow = 5.0  # the client gives up after 0.5 s
    orders.place("c-1")

    response = await mobile.get("/mobile/home")

    assert response.status_code == 200
    home = response.json()
    assert (home["featured"], home["categories"]) == ([], [])
    assert home["degraded"] == ["featured", "categories"]
    assert home["latest_order"] is not None
    assert home["cart_count"] == 0


@pytest.mark.parametrize("upstream_urls", [{"catalog": [nothing_listening()]}])
async def test_with_the_catalog_unreachable_the_home_names_its_parts_degraded(
    mobile: httpx.AsyncClient, upstream_urls: dict[str, list[str]]
) -> None:
    response = await mobile.get("/mobile/home")

    assert response.status_code == 200
    assert response.json()["degraded"] == ["featured", "categories"]
