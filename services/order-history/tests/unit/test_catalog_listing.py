"""Learning the products published before order-history subscribed, from the catalog's listing."""

from __future__ import annotations

import pytest

from chassis.upstream import UpstreamFailure
from contracts import Money
from contracts.events import ProductCreated, ProductUpdated
from order_history.domain.model import Product
from order_history.service_layer.catalog_listing import learn_catalog, listing_message
from order_history.service_layer.handlers import take_in
from order_history.service_layer.rebuilding import rebuild

from .conftest import (
    SAFFRON_CREATED,
    SAFFRON_ID,
    SAFFRON_RENAMED,
    TAGINE_CREATED,
    TAGINE_ID,
    at,
    message,
)
from .fakes import FakeStore, FakeUnitOfWork

SAFFRON_V3 = ProductUpdated(
    SAFFRON_ID, "SPC-SAFFRON-2G", "Saffron, 2 g", "spices", Money(1590, "EUR"), 3, (), at(50)
)


class FakeCatalog:
    def __init__(self, *listed: ProductCreated | ProductUpdated) -> None:
        self.listed = list(listed)
        self.down = False

    async def products(self) -> list[ProductCreated | ProductUpdated]:
        if self.down:
            raise UpstreamFailure("catalog", "GET /products: refused", transient=True)
        return self.listed


async def test_the_listed_products_are_taken_in_once_however_often_listed(
    uow: FakeUnitOfWork, store: FakeStore
) -> None:
    listing = FakeCatalog(SAFFRON_CREATED, TAGINE_CREATED)

    assert await learn_catalog(listing, lambda: uow) == 2
    assert await learn_catalog(listing, lambda: uow) == 0  # the next start

    assert store.products == {
        SAFFRON_ID: Product(SAFFRON_ID, "SPC-SAFFRON-2G", "Saffron threads", 1),
        TAGINE_ID: Product(TAGINE_ID, "CER-TAGINE-30CM", "Clay tagine, 30 cm", 1),
    }
    assert len(store.archive) == 2


async def test_a_listing_older_than_what_the_bus_told_changes_nothing_and_a_newer_one_wins(
    uow: FakeUnitOfWork, store: FakeStore
) -> None:
    await take_in(message(SAFFRON_RENAMED), uow)

    await learn_catalog(FakeCatalog(SAFFRON_CREATED), lambda: uow)
    assert store.products[SAFFRON_ID].version == 2

    await learn_catalog(FakeCatalog(SAFFRON_V3), lambda: uow)
    assert store.products[SAFFRON_ID] == Product(SAFFRON_ID, "SPC-SAFFRON-2G", "Saffron, 2 g", 3)


async def test_what_was_learnt_from_the_listing_is_rebuilt_from_the_archive_too(
    uow: FakeUnitOfWork, store: FakeStore
) -> None:
    await learn_catalog(FakeCatalog(SAFFRON_V3, TAGINE_CREATED), lambda: uow)
    live = dict(store.products)
    store.products.clear()

    await rebuild(uow)

    assert store.products == live


async def test_a_catalog_that_cannot_list_leaves_everything_as_it_was(
    uow: FakeUnitOfWork, store: FakeStore
) -> None:
    listing = FakeCatalog(SAFFRON_CREATED)
    listing.down = True

    with pytest.raises(UpstreamFailure):
        await learn_catalog(listing, lambda: uow)

    assert (store.archive, store.products) == ([], {})


def test_a_listed_products_message_is_named_after_its_product_and_version() -> None:
    listed = listing_message(SAFFRON_V3)

    assert (listed.topic, listed.key, listed.event_type) == (
        "catalog",
        SAFFRON_ID,
        "ProductUpdated",
    )
    assert listed.message_id == f"catalog-listing-{SAFFRON_ID}-v3"
    assert listing_message(SAFFRON_V3).message_id == listed.message_id
