"""The caller's orders by cursor: every order once, even with new ones placed mid-walk."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

import pytest

from .conftest import PROBLEM

if TYPE_CHECKING:
    import httpx

    from .conftest import OrdersStandIn


async def walk(mobile: httpx.AsyncClient, limit: int, *, between: object = None) -> list[str]:
    """The ids of every order met walking the pages; ``between`` is called after page 1."""
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        response = await mobile.get("/mobile/orders", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        seen += [order["id"] for order in page["items"]]
        if callable(between) and cursor is None:
            between()
        cursor = page["next"]
        if cursor is None:
            return seen


async def test_a_walk_meets_every_order_once_newest_first(
    mobile: httpx.AsyncClient, orders: OrdersStandIn
) -> None:
    placed = [orders.place("c-1") for _ in range(7)]
    orders.place("c-2")

    assert await walk(mobile, limit=3) == placed[::-1]


async def test_an_order_placed_mid_walk_neither_repeats_nor_skips_one(
    mobile: httpx.AsyncClient, orders: OrdersStandIn
) -> None:
    placed = [orders.place("c-1") for _ in range(5)]

    seen = await walk(mobile, limit=2, between=lambda: orders.place("c-1"))

    assert seen == placed[::-1]


async def test_an_order_row_is_compact(mobile: httpx.AsyncClient, orders: OrdersStandIn) -> None:
    order_id = orders.place("c-1", quantity=3, status="PENDING")

    page = (await mobile.get("/mobile/orders")).json()

    assert page == {
        "items": [
            {
                "id": order_id,
                "status": "PENDING",
                "total": 4470,
                "cur": "EUR",
                "n": 3,
                "at": "2026-11-25T10:01:00Z",
            }
        ],
        "next": None,
    }


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        base64.urlsafe_b64encode(b"m9:MQ==").decode(),  # not this API's version
        base64.urlsafe_b64encode(b"m1:not-orders-cursor").decode(),  # orders refuses it
        base64.urlsafe_b64encode(b"m1:" + b"A" * 250).decode(),  # too long for orders
    ],
)
async def test_a_cursor_this_api_did_not_give_is_a_400_invalid_cursor(
    mobile: httpx.AsyncClient, cursor: str
) -> None:
    response = await mobile.get("/mobile/orders", params={"cursor": cursor})

    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "invalid_cursor"


@pytest.mark.parametrize("limit", [0, 51, -1])
async def test_a_limit_out_of_bounds_is_a_422_validation(
    mobile: httpx.AsyncClient, limit: int
) -> None:
    response = await mobile.get("/mobile/orders", params={"limit": limit})

    assert response.status_code == 422
    assert response.json()["code"] == "validation"


async def test_with_orders_down_the_list_is_a_503_upstream_unavailable(
    mobile: httpx.AsyncClient, orders: OrdersStandIn
) -> None:
    orders.down = True

    response = await mobile.get("/mobile/orders")

    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert (response.json()["code"], response.json()["upstream"]) == (
        "upstream_unavailable",
        "orders",
    )


async def test_a_token_orders_refuses_is_a_401_unauthorized_not_an_outage(
    mobile: httpx.AsyncClient, orders: OrdersStandIn
) -> None:
    orders.revoked.add("c-1")

    for path in ("/mobile/orders", "/mobile/home"):
        response = await mobile.get(path)
        assert response.status_code == 401, path
        assert response.json()["code"] == "unauthorized"
        assert response.headers["www-authenticate"].startswith("Bearer")
