"""The catalog's products over its REST API, implementing the Catalog port."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from chassis.upstream import UpstreamFailure
from contracts import Money, MoneyError
from orders.adapters.upstream_errors import port_errors
from orders.domain.errors import UnknownProduct
from orders.domain.model import ProductSnapshot

if TYPE_CHECKING:
    from chassis.upstream import HttpUpstream


class CatalogClient:
    """Reads ``GET /products/{id}``: its ``id``, ``sku``, ``name`` and ``price``."""

    def __init__(self, upstream: HttpUpstream) -> None:
        self._upstream = upstream

    @port_errors
    async def product(self, product_id: str) -> ProductSnapshot:
        path = f"/products/{quote(product_id, safe='')}"
        answer = await self._upstream.call("GET", path)
        if answer.status == 404:
            raise UnknownProduct(product_id)
        if answer.status != 200:
            raise self._upstream.unexpected("GET", path, answer)
        body = answer.body
        try:
            return ProductSnapshot(
                product_id=str(body["id"]),
                sku=str(body["sku"]),
                name=str(body["name"]),
                price=Money(body["price"]["amount"], body["price"]["currency"]),
            )
        except (KeyError, TypeError, MoneyError) as error:
            raise UpstreamFailure(
                "catalog",
                f"GET {path} answered a product orders cannot read: {type(error).__name__} {error}",
                transient=False,
            ) from error
