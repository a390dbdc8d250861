"""Conditional GETs: an ETag on every read, 304 when the app has it, never one shared by two
customers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from .conftest import bearer

if TYPE_CHECKING:
    import httpx

    from .conftest import OrdersStandIn

READS = ["/mobile/home", "/mobile/orders", "/mobile/cart"]


@pytest.mark.parametrize("path", READS)
async def test_a_read_sent_again_with_its_etag_is_a_304_without_a_body(
    mobile: httpx.AsyncClient, path: str
) -> None:
    first = await mobile.get(path)

    again = await mobile.get(path, headers={"If-None-Match": first.headers["etag"]})

    assert first.status_code == 200
    assert first.headers["cache-control"] == "private, no-cache"
    assert first.headers["vary"] == "Authorization"
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == first.headers["etag"]


@pytest.mark.parametrize("path", READS)
async def test_two_customers_with_the_same_answer_get_different_etags(
    mobile: httpx.AsyncClient, path: str
) -> None:
    mine = await mobile.get(path)
    theirs = await mobile.get(path, headers=bearer("c-2"))

    assert mine.content == theirs.content  # both new: the same empty screens
    assert mine.headers["etag"] != theirs.headers["etag"]
    # Another customer's tag is not theirs: they get the whole answer.
    stolen = await mobile.get(
        path, headers={**bearer("c-2"), "If-None-Match": mine.headers["etag"]}
    )
    assert stolen.status_code == 200


async def test_a_changed_cart_gets_a_new_etag_and_a_full_answer(
    mobile: httpx.AsyncClient,
) -> None:
    before = await mobile.get("/mobile/cart")
    await mobile.put("/mobile/cart/items/p-saffron", json={"qty": 1})

    after = await mobile.get("/mobile/cart", headers={"If-None-Match": before.headers["etag"]})

    assert after.status_code == 200
    assert after.json()["count"] == 1


async def test_a_new_order_changes_the_home_and_the_orders_list(
    mobile: httpx.AsyncClient, orders: OrdersStandIn
) -> None:
    home, listing = await mobile.get("/mobile/home"), await mobile.get("/mobile/orders")
    orders.place("c-1")

    home_again = await mobile.get("/mobile/home", headers={"If-None-Match": home.headers["etag"]})
    listing_again = await mobile.get(
        "/mobile/orders", headers={"If-None-Match": listing.headers["etag"]}
    )

    assert (home_again.status_code, listing_again.status_code) == (200, 200)
