"""Pages put together from several services; a part that fails leaves a notice, not an error."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bff_web.domain.cart import Cart
from bff_web.domain.errors import ProductNotFound
from bff_web.domain.shop import Category, Money, ProductPage, StockLevel
from bff_web.service_layer import pages
from chassis.upstream import UpstreamFailure

from .conftest import product
from .fakes import FakeCatalog, FakeStock

SAFFRON, CUMIN, TEAPOT = product("saffron"), product("cumin", price=390), product("teapot", "tea")


@pytest.fixture
def catalog() -> FakeCatalog:
    return FakeCatalog({p.id: p for p in (SAFFRON, CUMIN, TEAPOT)})


async def test_the_front_page_has_the_categories_and_the_products(catalog: FakeCatalog) -> None:
    front = await pages.storefront(catalog, pages.Listing(category="spices"), page_size=12)
    assert [c.slug for c in front.categories] == ["spices"]
    assert front.category is not None
    assert front.products.items == [SAFFRON, CUMIN]
    assert front.notices == []


async def test_the_front_page_goes_on_without_its_categories(catalog: FakeCatalog) -> None:
    catalog.categories_fail = True
    front = await pages.storefront(catalog, pages.Listing(), page_size=12)
    assert front.categories == []
    assert front.notices == [pages.CATEGORIES_UNAVAILABLE]
    assert len(front.products.items) == 3


async def test_the_front_page_cannot_go_on_without_its_products(catalog: FakeCatalog) -> None:
    catalog.listing_fails = True
    with pytest.raises(UpstreamFailure):
        await pages.storefront(catalog, pages.Listing(), page_size=12)


async def test_a_product_page_has_its_stock_and_other_products_of_its_category(
    catalog: FakeCatalog,
) -> None:
    view = await pages.product_view(catalog, FakeStock({SAFFRON.sku: 7}), "saffron")
    assert view.product == SAFFRON
    assert view.stock is not None
    assert view.stock.available == 7
    assert view.stock_known
    assert view.category is not None
    assert view.category.name == "Spices"
    assert view.related == [CUMIN]
    assert view.notices == []


async def test_a_product_inventory_does_not_stock_is_known_to_have_none(
    catalog: FakeCatalog,
) -> None:
    view = await pages.product_view(catalog, FakeStock(), "saffron")
    assert view.stock is None
    assert view.stock_known


async def test_a_product_page_without_inventory_says_stock_is_unavailable(
    catalog: FakeCatalog,
) -> None:
    view = await pages.product_view(catalog, FakeStock(down=True), "saffron")
    assert view.product == SAFFRON
    assert not view.stock_known
    assert view.notices == [pages.STOCK_UNAVAILABLE]


async def test_an_unknown_product_has_no_page(catalog: FakeCatalog) -> None:
    with pytest.raises(ProductNotFound):
        await pages.product_view(catalog, FakeStock(), "nothing")


async def test_the_cart_page_prices_each_line_and_totals_them(catalog: FakeCatalog) -> None:
    cart = Cart()
    cart.add("saffron", 2)
    cart.add("cumin")
    view = await pages.cart_view(catalog, FakeStock(), cart)
    assert [(item.product, item.quantity) for item in view.items] == [(SAFFRON, 2), (CUMIN, 1)]
    assert view.items[0].line_total == Money(2980, "EUR")
    assert view.total == Money(3370, "EUR")


async def test_a_product_gone_from_the_catalog_leaves_the_cart_with_a_notice(
    catalog: FakeCatalog,
) -> None:
    cart = Cart()
    cart.add("saffron")
    cart.add("discontinued")
    view = await pages.cart_view(catalog, FakeStock(), cart)
    assert [item.product for item in view.items] == [SAFFRON]
    assert cart.lines[0].product_id == "saffron"
    assert len(cart.lines) == 1
    assert len(view.notices) == 1


async def test_an_empty_cart_has_no_total(catalog: FakeCatalog) -> None:
    assert (await pages.cart_view(catalog, FakeStock(), Cart())).total is None


class Rendezvous(FakeCatalog):
    """A catalog (and stock) whose calls each wait until ``parties`` calls have started."""

    def __init__(self, catalog: FakeCatalog, parties: int, stock: FakeStock | None = None) -> None:
        super().__init__(catalog.products_by_id)
        self.barrier = asyncio.Barrier(parties)
        self.stock = stock

    async def categories(self) -> list[Category]:
        await self.barrier.wait()
        return await super().categories()

    async def products(
        self, *, category: str | None, query: str | None, page: int, page_size: int, **more: Any
    ) -> ProductPage:
        await self.barrier.wait()
        return await super().products(
            category=category, query=query, page=page, page_size=page_size, **more
        )

    async def level(self, sku: str) -> StockLevel | None:
        await self.barrier.wait()
        assert self.stock is not None
        return await self.stock.level(sku)


async def test_the_front_pages_categories_and_products_are_asked_for_at_once(
    catalog: FakeCatalog,
) -> None:
    both = Rendezvous(catalog, 2)
    # One after the other, the first call would wait for the second forever.
    async with asyncio.timeout(5):
        front = await pages.storefront(both, pages.Listing(), page_size=12)
    assert len(front.products.items) == 3


async def test_a_products_stock_category_and_stall_are_asked_for_at_once(
    catalog: FakeCatalog,
) -> None:
    all_three = Rendezvous(catalog, 3, FakeStock({SAFFRON.sku: 3}))
    async with asyncio.timeout(5):
        view = await pages.product_view(all_three, all_three, "saffron")
    assert view.stock is not None
    assert view.related == [CUMIN]


async def test_the_cart_says_which_lines_exceed_the_stock_and_how_many_are_left() -> None:
    saffron, teapot = product("p-saffron"), product("p-teapot", "tea-coffee", 4200)
    catalog = FakeCatalog({p.id: p for p in (saffron, teapot)})
    cart = Cart()
    cart.add("p-saffron", 5)
    cart.add("p-teapot", 1)
    levels = {saffron.sku: 2}  # the teapot is not stocked: sold out
    view = await pages.cart_view(catalog, FakeStock(levels), cart)
    assert [item.available for item in view.items] == [2, 0]
    assert view.problems == [
        "Only 2 of The p-saffron left: lower the quantity.",
        "The p-teapot has sold out: remove it to check out.",
    ]
    cart.change("p-saffron", 2)
    cart.change("p-teapot", 0)
    assert (await pages.cart_view(catalog, FakeStock(levels), cart)).problems == []


async def test_with_inventory_down_the_cart_has_no_problems_and_says_so() -> None:
    saffron = product("p-saffron")
    cart = Cart()
    cart.add("p-saffron", 50)
    view = await pages.cart_view(FakeCatalog({saffron.id: saffron}), FakeStock(down=True), cart)
    assert view.problems == []
    assert pages.STOCK_UNAVAILABLE in view.notices
