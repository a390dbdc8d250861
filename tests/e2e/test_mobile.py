"""The mobile app's API through the gateway: the home in one call, orders by cursor, 304s."""

from __future__ import annotations

import uuid

import httpx

from .conftest import new_shopper


def _a_product(shopper: httpx.Client) -> dict:
    return shopper.get("/api/catalog/products", params={"page_size": 1}).json()["items"][0]


def _order(shopper: httpx.Client, product: dict) -> str:
    """Place an order (declined at payment: it takes no stock from the other tests)."""
    response = shopper.post(
        "/api/orders",
        headers={"Idempotency-Key": str(uuid.uuid4())},
        json={
            "items": [{"product_id": product["id"], "quantity": 1}],
            "payment": {"card_token": "tok_decline"},
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_the_home_shows_featured_products_categories_the_cart_count_and_the_latest_order(
    souk, shopper
):
    product = _a_product(shopper)
    put = shopper.put(f"/api/mobile/cart/items/{product['id']}", json={"qty": 2})
    assert put.status_code == 200, put.text
    latest = _order(shopper, product)

    response = shopper.get("/api/mobile/home")

    assert response.status_code == 200, response.text
    home = response.json()
    assert home["degraded"] == []
    assert home["featured"]
    assert {"id", "name", "cat", "price", "cur"} == set(home["featured"][0])
    assert {c["slug"] for c in home["categories"]} >= {p["cat"] for p in home["featured"]}
    assert home["cart_count"] == 2
    assert home["latest_order"]["id"] == latest


def test_a_walk_through_the_orders_meets_each_once_while_another_is_placed(souk, shopper):
    product = _a_product(shopper)
    placed = [_order(shopper, product) for _ in range(5)]

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} if cursor is None else {"limit": 2, "cursor": cursor}
        page = shopper.get("/api/mobile/orders", params=params).json()
        seen += [order["id"] for order in page["items"]]
        if cursor is None:
            _order(shopper, product)  # placed mid-walk: newer than the walk's start
        cursor = page["next"]
        if cursor is None:
            break

    assert seen == placed[::-1]
    bad = shopper.get("/api/mobile/orders", params={"cursor": "not-a-cursor"})
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid_cursor")


def test_an_unchanged_screen_is_a_304_and_another_customers_tag_is_not_honoured(souk, shopper):
    first = shopper.get("/api/mobile/cart")

    again = shopper.get("/api/mobile/cart", headers={"If-None-Match": first.headers["etag"]})

    assert (first.status_code, again.status_code) == (200, 304)
    with new_shopper(souk) as stranger:
        theirs = stranger.get("/api/mobile/cart", headers={"If-None-Match": first.headers["etag"]})
    assert theirs.status_code == 200
    assert theirs.json() == first.json() == {"items": [], "count": 0}


def test_without_a_token_the_mobile_api_is_refused_at_the_gateway(gateway):
    response = gateway.get("/api/mobile/home")

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
