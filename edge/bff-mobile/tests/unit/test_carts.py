"""Putting products in the cart and taking them out, through the service layer."""

from __future__ import annotations

import pytest

from bff_mobile.domain.errors import ProductNotFound
from bff_mobile.service_layer.carts import cart_of, put_item, remove_item
from chassis.upstream import UpstreamFailure

from .conftest import AT, down
from .fakes import SAFFRON, TEA, FakeCatalog, FakeStore, FakeUnitOfWork


async def test_a_product_put_in_is_in_the_customers_cart_only(
    uow: FakeUnitOfWork, catalog: FakeCatalog
) -> None:
    await put_item(uow, catalog, "c-1", SAFFRON.id, 2, at=AT)

    assert [(line.product_id, line.quantity) for line in (await cart_of(uow, "c-1")).lines] == [
        (SAFFRON.id, 2)
    ]
    assert (await cart_of(uow, "c-2")).lines == []


async def test_a_product_the_catalog_does_not_have_is_refused(
    uow: FakeUnitOfWork, store: FakeStore, catalog: FakeCatalog
) -> None:
    with pytest.raises(ProductNotFound):
        await put_item(uow, catalog, "c-1", "p-nothing", 1, at=AT)
    assert store.lines == {}


async def test_with_the_catalog_down_nothing_is_put_in(
    uow: FakeUnitOfWork, store: FakeStore, catalog: FakeCatalog
) -> None:
    catalog.failing = down("catalog")

    with pytest.raises(UpstreamFailure):
        await put_item(uow, catalog, "c-1", SAFFRON.id, 1, at=AT)
    assert store.lines == {}


async def test_taking_out_a_product_twice_is_harmless(
    uow: FakeUnitOfWork, catalog: FakeCatalog
) -> None:
    await put_item(uow, catalog, "c-1", SAFFRON.id, 2, at=AT)
    await put_item(uow, catalog, "c-1", TEA.id, 1, at=AT)

    first = await remove_item(uow, "c-1", SAFFRON.id)
    second = await remove_item(uow, "c-1", SAFFRON.id)

    assert [line.product_id for line in first.lines] == [TEA.id]
    assert second.lines == first.lines
    assert uow.commits == 3  # two puts and one removal: the repeat wrote nothing
