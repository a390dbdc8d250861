"""The home screen: every part fetched at once; a part whose source fails is left empty and
named, and the screen still answers."""

from __future__ import annotations

from datetime import date

import pytest

from bff_mobile.service_layer.carts import put_item
from bff_mobile.service_layer.home import HomeScreen, Part, Sources, home_screen
from chassis.unit_of_work import StorageUnavailableError

from .conftest import AT, down, summary
from .fakes import CATEGORIES, PRODUCTS, TEA, FakeCatalog, FakeOrders, FakeUnitOfWork

TOKEN = "c-1;orders:read"  # noqa: S105 - a fake's token
TODAY = date(2026, 11, 25)


async def home(
    catalog: FakeCatalog, orders: FakeOrders, uow: FakeUnitOfWork, *, part_timeout: float = 5.0
) -> HomeScreen:
    return await home_screen(
        Sources(catalog=catalog, orders=orders, uow=uow),
        "c-1",
        TOKEN,
        today=TODAY,
        featured_count=3,
        part_timeout=part_timeout,
    )


async def test_the_home_has_featured_products_categories_cart_count_and_latest_order(
    catalog: FakeCatalog, orders: FakeOrders, uow: FakeUnitOfWork
) -> None:
    await put_item(uow, catalog, "c-1", TEA.id, 3, at=AT)
    for n in (1, 2):
        orders.place("c-1", summary(n))

    screen = await home(catalog, orders, uow)

    assert len(screen.featured) == 3
    assert {p.category for p in screen.featured} == {p.category for p in PRODUCTS}
    assert screen.categories == CATEGORIES
    assert screen.cart_count == 3
    assert screen.latest_order == summary(2)
    assert screen.degraded == []
    # Orders is asked with the customer's own token.
    assert orders.tokens_seen == [TOKEN]


async def test_a_new_customer_has_an_empty_cart_and_no_latest_order(
    catalog: FakeCatalog, orders: FakeOrders, uow: FakeUnitOfWork
) -> None:
    screen = await home(catalog, orders, uow)

    assert (screen.cart_count, screen.latest_order, screen.degraded) == (0, None, [])


async def test_with_the_catalog_down_the_home_still_has_the_cart_and_the_latest_order(
    catalog: FakeCatalog, orders: FakeOrders, uow: FakeUnitOfWork
) -> None:
    orders.place("c-1", summary(1))
    catalog.failing = down("catalog")

    screen = await home(catalog, orders, uow)

    assert (screen.featured, screen.categories) == ([], [])
    assert (screen.cart_count, screen.latest_order) == (0, summary(1))
    assert screen.degraded == [Part.FEATURED, Part.CATEGORIES]


async def test_with_orders_down_the_latest_order_is_null_and_degraded(
    catalog: FakeCatalog, orders: FakeOrders, uow: FakeUnitOfWork
) -> None:
    orders.failing = down("orders")

    screen = await home(catalog, orders, uow)

    assert screen.latest_order is None
    assert screen.degraded == [Part.LATEST_ORDER]
    assert len(screen.featured) == 3


async def test_with_its_own_database_unusable_the_cart_count_is_null_and_degraded(
    catalog: FakeCatalog, orders: FakeOrders, uow: FakeUnitOfWork
) -> None:
    uow.store.failing = StorageUnavailableError("database is locked")

    screen = await home(catalog, orders, uow)

    assert screen.cart_count is None
    assert screen.degraded == [Part.CART_COUNT]


async def test_a_source_slower_than_the_part_timeout_is_given_up_on(
    catalog: FakeCatalog, orders: FakeOrders, uow: FakeUnitOfWork
) -> None:
    orders.stalled = True  # never answers

    screen = await home(catalog, orders, uow, part_timeout=0.05)

    assert screen.latest_order is None
    assert screen.degraded == [Part.LATEST_ORDER]
    assert screen.categories == CATEGORIES


async def test_the_parts_are_fetched_at_once_not_one_after_another(
    catalog: FakeCatalog, orders: FakeOrders, uow: FakeUnitOfWork
) -> None:
    # The catalog answers only once orders has been asked: one after the other, it would
    # wait for ever (until the part timeout, and be degraded).
    original = catalog.categories

    async def categories_once_orders_is_asked() -> list:
        await orders.started.wait()
        return await original()

    catalog.categories = categories_once_orders_is_asked  # type: ignore[method-assign]
    orders.place("c-1", summary(1))

    screen = await home(catalog, orders, uow, part_timeout=5.0)

    assert screen.degraded == []
    assert screen.categories == CATEGORIES


async def test_a_bug_is_not_hidden_as_a_degraded_part(
    catalog: FakeCatalog, orders: FakeOrders, uow: FakeUnitOfWork
) -> None:
    catalog.failing = KeyError("price")  # type: ignore[assignment]

    with pytest.raises(KeyError):
        await home(catalog, orders, uow)
