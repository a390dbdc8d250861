"""Command handlers load, act and save through the unit of work."""

from __future__ import annotations

import dataclasses

import pytest

from catalog.domain.commands import CreateProduct, ImportCatalog, UpdateProduct
from catalog.domain.errors import (
    DuplicateSku,
    InvalidProduct,
    ProductNotFound,
    StaleProduct,
    UnknownCategory,
)
from catalog.service_layer.handlers import create_product, import_catalog, update_product
from catalog.service_layer.ports import UnitOfWork
from catalog.service_layer.queries import get_product, list_products
from contracts import Money


async def test_a_created_product_is_in_the_catalog_afterwards(
    uow: UnitOfWork, saffron_command: CreateProduct
) -> None:
    created = await create_product(saffron_command, uow)

    stored = await get_product(uow, created.id)
    assert (stored.sku, stored.name, stored.price, stored.version) == (
        "SPC-SAFFRON-2G",
        "Taliouine saffron threads, 2 g",
        Money(1490, "EUR"),
        1,
    )


async def test_creating_a_product_with_a_sku_already_in_use_is_refused(
    uow: UnitOfWork, saffron_command: CreateProduct
) -> None:
    await create_product(saffron_command, uow)

    with pytest.raises(DuplicateSku):
        await create_product(dataclasses.replace(saffron_command, name="Other saffron"), uow)


async def test_creating_a_product_in_a_category_the_shop_does_not_have_is_refused(
    uow: UnitOfWork, saffron_command: CreateProduct
) -> None:
    with pytest.raises(UnknownCategory):
        await create_product(dataclasses.replace(saffron_command, category="weapons"), uow)

    assert (await list_products(uow)).total == 0


async def test_an_invalid_product_is_not_stored(
    uow: UnitOfWork, saffron_command: CreateProduct
) -> None:
    with pytest.raises(InvalidProduct):
        await create_product(dataclasses.replace(saffron_command, price=Money(-1, "EUR")), uow)

    assert (await list_products(uow)).total == 0


async def test_updating_a_product_changes_only_the_given_fields_and_bumps_its_version(
    uow: UnitOfWork, saffron_command: CreateProduct
) -> None:
    created = await create_product(saffron_command, uow)

    updated = await update_product(
        UpdateProduct(product_id=created.id, price=Money(1290, "EUR")), uow
    )

    stored = await get_product(uow, created.id)
    assert updated.version == stored.version == 2
    assert (stored.name, stored.price) == (created.name, Money(1290, "EUR"))


async def test_updating_a_product_that_does_not_exist_is_refused(uow: UnitOfWork) -> None:
    with pytest.raises(ProductNotFound):
        await update_product(UpdateProduct(product_id="no-such-id", name="Ghost"), uow)


async def test_an_update_for_the_current_version_applies(
    uow: UnitOfWork, saffron_command: CreateProduct
) -> None:
    created = await create_product(saffron_command, uow)

    updated = await update_product(
        UpdateProduct(product_id=created.id, name="Saffron", expected_version=1), uow
    )

    assert (updated.name, updated.version) == ("Saffron", 2)


async def test_an_update_for_an_outdated_version_is_refused_and_changes_nothing(
    uow: UnitOfWork, saffron_command: CreateProduct
) -> None:
    created = await create_product(saffron_command, uow)
    await update_product(UpdateProduct(product_id=created.id, name="First edit"), uow)

    with pytest.raises(StaleProduct):
        await update_product(
            UpdateProduct(product_id=created.id, name="Second edit", expected_version=1), uow
        )

    assert (await get_product(uow, created.id)).name == "First edit"


async def test_moving_a_product_to_a_category_the_shop_does_not_have_is_refused(
    uow: UnitOfWork, saffron_command: CreateProduct
) -> None:
    created = await create_product(saffron_command, uow)

    with pytest.raises(UnknownCategory):
        await update_product(UpdateProduct(product_id=created.id, category="weapons"), uow)

    assert (await get_product(uow, created.id)).category == "spices"


async def test_moving_a_product_to_another_existing_category_works(
    uow: UnitOfWork, saffron_command: CreateProduct
) -> None:
    created = await create_product(saffron_command, uow)

    await update_product(UpdateProduct(product_id=created.id, category="tea-coffee"), uow)

    assert (await get_product(uow, created.id)).category == "tea-coffee"


async def test_an_import_adds_only_the_skus_the_catalog_lacks(
    uow: UnitOfWork, saffron_command: CreateProduct
) -> None:
    await create_product(saffron_command, uow)
    mint = CreateProduct(
        sku="TEA-NANA-MINT-100G",
        name="Dried nana mint",
        category="tea-coffee",
        price=Money(490, "EUR"),
    )
    renamed_saffron = dataclasses.replace(saffron_command, name="Renamed saffron")

    first = await import_catalog(ImportCatalog(products=(renamed_saffron, mint)), uow)
    second = await import_catalog(ImportCatalog(products=(renamed_saffron, mint)), uow)

    assert (first, second) == (1, 0)
    listing = await list_products(uow)
    assert [p.name for p in listing.items] == ["Dried nana mint", "Taliouine saffron threads, 2 g"]


async def test_an_import_with_one_bad_product_adds_none(
    uow: UnitOfWork, saffron_command: CreateProduct
) -> None:
    bad = dataclasses.replace(saffron_command, sku="TEA-BAD-1", category="weapons")

    with pytest.raises(UnknownCategory):
        await import_catalog(ImportCatalog(products=(saffron_command, bad)), uow)

    assert (await list_products(uow)).total == 0
