"""The cart over HTTP: kept per token subject in bff-mobile's own database."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from bff_mobile.domain.cart import MAX_LINES

from .conftest import PROBLEM, SAFFRON, bearer

if TYPE_CHECKING:
    import httpx

    from .conftest import CatalogStandIn


async def test_a_product_put_in_the_cart_is_named_and_priced_by_the_catalog(
    mobile: httpx.AsyncClient,
) -> None:
    put = await mobile.put("/mobile/cart/items/p-saffron", json={"qty": 2})
    await mobile.put("/mobile/cart/items/p-tea", json={"qty": 1})

    assert put.status_code == 200, put.text
    assert (await mobile.get("/mobile/cart")).json() == {
        "items": [
            {
                "id": "p-saffron",
                "name": "Taliouine saffron threads, 2 g",
                "qty": 2,
                "price": 1490,
                "cur": "EUR",
            },
            {
                "id": "p-tea",
                "name": "Gunpowder green tea, 250 g",
                "qty": 1,
                "price": 850,
                "cur": "EUR",
            },
        ],
        "count": 3,
    }


async def test_putting_a_product_again_sets_its_quantity(mobile: httpx.AsyncClient) -> None:
    await mobile.put("/mobile/cart/items/p-saffron", json={"qty": 2})
    again = await mobile.put("/mobile/cart/items/p-saffron", json={"qty": 5})

    assert [(line["id"], line["qty"]) for line in again.json()["items"]] == [("p-saffron", 5)]


async def test_each_customer_has_their_own_cart(mobile: httpx.AsyncClient) -> None:
    await mobile.put("/mobile/cart/items/p-saffron", json={"qty": 2})

    theirs = await mobile.get("/mobile/cart", headers=bearer("c-2"))

    assert theirs.json() == {"items": [], "count": 0}


async def test_taking_a_product_out_twice_answers_the_cart_both_times(
    mobile: httpx.AsyncClient,
) -> None:
    await mobile.put("/mobile/cart/items/p-saffron", json={"qty": 2})
    await mobile.put("/mobile/cart/items/p-tea", json={"qty": 1})

    first = await mobile.delete("/mobile/cart/items/p-saffron")
    second = await mobile.delete("/mobile/cart/items/p-saffron")

    assert first.status_code == second.status_code == 200
    assert [line["id"] for line in second.json()["items"]] == ["p-tea"]


async def test_a_product_the_catalog_does_not_have_is_a_404_not_found(
    mobile: httpx.AsyncClient,
) -> None:
    response = await mobile.put("/mobile/cart/items/p-unicorn", json={"qty": 1})

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert (response.json()["code"], response.json()["product_id"]) == ("not_found", "p-unicorn")


@pytest.mark.parametrize("body", [{"qty": 0}, {"qty": 101}, {"qty": "2"}, {"qty": 1, "x": 1}, {}])
async def test_a_quantity_that_is_not_1_to_100_is_a_422_validation(
    mobile: httpx.AsyncClient, body: dict[str, object]
) -> None:
    response = await mobile.put("/mobile/cart/items/p-saffron", json=body)

    assert response.status_code == 422
    assert response.json()["code"] == "validation"


async def test_with_the_catalog_down_a_put_is_a_503_and_the_cart_unchanged(
    mobile: httpx.AsyncClient, catalog: CatalogStandIn
) -> None:
    catalog.down = True

    response = await mobile.put("/mobile/cart/items/p-saffron", json={"qty": 1})

    assert response.status_code == 503
    assert response.json()["code"] == "upstream_unavailable"
    assert (await mobile.get("/mobile/cart")).json()["count"] == 0


async def test_a_full_cart_refuses_another_product_with_409_cart_full(
    mobile: httpx.AsyncClient, catalog: CatalogStandIn
) -> None:
    catalog.products = tuple(
        {**SAFFRON, "id": f"p-{n}", "name": f"Spice {n}"} for n in range(MAX_LINES + 1)
    )
    for n in range(MAX_LINES):
        assert (await mobile.put(f"/mobile/cart/items/p-{n}", json={"qty": 1})).status_code == 200

    response = await mobile.put(f"/mobile/cart/items/p-{MAX_LINES}", json={"qty": 1})

    assert response.status_code == 409
    assert response.json()["code"] == "cart_full"
