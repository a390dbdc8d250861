"""The customer's cart: read it, put a product in at some quantity, take one out."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bff_mobile.domain.errors import ProductNotFound

if TYPE_CHECKING:
    from datetime import datetime

    from bff_mobile.domain.cart import Cart
    from bff_mobile.service_layer.ports import Catalog, UnitOfWork


async def cart_of(uow: UnitOfWork, customer_id: str) -> Cart:
    async with uow:
        return await uow.carts.get(customer_id)


async def put_item(
    uow: UnitOfWork,
    catalog: Catalog,
    customer_id: str,
    product_id: str,
    quantity: int,
    *,
    at: datetime,
) -> Cart:
    """Set the product's quantity in the cart, named and priced by the catalog now.

    Raises ProductNotFound, InvalidQuantity or CartFull; UpstreamFailure if the catalog
    cannot say what the product is.
    """
    product = await catalog.product(product_id)
    if product is None:
        raise ProductNotFound(product_id)
    async with uow:
        cart = await uow.carts.get(customer_id)
        line = cart.put(product, quantity, at=at)
        await uow.carts.put(customer_id, line)
        await uow.commit()
    return cart


async def remove_item(uow: UnitOfWork, customer_id: str, product_id: str) -> Cart:
    """Take the product out of the cart; taking out what is not there changes nothing, so a
    phone may safely repeat the request."""
    async with uow:
        cart = await uow.carts.get(customer_id)
        if cart.remove(product_id):
            await uow.carts.remove(customer_id, product_id)
            await uow.commit()
    return cart
