"""One handler per command: load, act, save."""

from __future__ import annotations

from typing import TYPE_CHECKING

from catalog.domain.errors import DuplicateSku, ProductNotFound, UnknownCategory
from catalog.domain.model import Product

if TYPE_CHECKING:
    from catalog.domain.commands import CreateProduct, ImportCatalog, UpdateProduct
    from catalog.service_layer.ports import UnitOfWork


async def create_product(command: CreateProduct, uow: UnitOfWork) -> Product:
    """Add a product to the catalog; its SKU must be new and its category must exist."""
    async with uow:
        if await uow.products.get_by_sku(command.sku) is not None:
            raise DuplicateSku(command.sku)
        product = await _new_product(command, uow)
        await uow.commit()
    return product


async def update_product(command: UpdateProduct, uow: UnitOfWork) -> Product:
    """Revise a product, optionally only if it is still at the version the caller saw."""
    async with uow:
        product = await uow.products.get(command.product_id)
        if product is None:
            raise ProductNotFound(command.product_id)
        if command.expected_version is not None:
            product.require_version(command.expected_version)
        if command.category is not None and command.category != product.category:
            await _require_category(command.category, uow)
        product.revise(
            name=command.name,
            description=command.description,
            category=command.category,
            price=command.price,
        )
        await uow.products.save(product)
        await uow.commit()
    return product


async def import_catalog(command: ImportCatalog, uow: UnitOfWork) -> int:
    """Add every product whose SKU is missing, in one transaction; returns how many."""
    added = 0
    async with uow:
        for item in command.products:
            if await uow.products.get_by_sku(item.sku) is None:
                await _new_product(item, uow)
                added += 1
        await uow.commit()
    return added


async def _new_product(command: CreateProduct, uow: UnitOfWork) -> Product:
    product = Product.create(
        sku=command.sku,
        name=command.name,
        description=command.description,
        category=command.category,
        price=command.price,
    )
    await _require_category(product.category, uow)
    await uow.products.add(product)
    return product


async def _require_category(slug: str, uow: UnitOfWork) -> None:
    if await uow.categories.get(slug) is None:
        raise UnknownCategory(slug)
