"""The catalog's public product listing over REST, page by page, as catalog events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from contracts.events import ProductCreated, ProductUpdated, timestamp
from contracts.money import Money

if TYPE_CHECKING:
    from chassis.upstream import HttpUpstream

PAGE_SIZE: Final = 100


class HttpCatalog:
    """Implements the Catalog port on the catalog's ``GET /products`` (public: no token)."""

    def __init__(self, upstream: HttpUpstream) -> None:
        self._upstream = upstream

    async def products(self) -> list[ProductCreated | ProductUpdated]:
        listed_at = timestamp(datetime.now(UTC))
        found: list[ProductCreated | ProductUpdated] = []
        page = 1
        while True:
            path = f"/products?page={page}&page_size={PAGE_SIZE}&sort=name"
            answer = await self._upstream.call("GET", path)
            body = answer.body
            if answer.status != 200 or not isinstance(body, dict):
                raise self._upstream.unexpected("GET", path, answer)
            try:
                found += [_event(item, listed_at) for item in body["items"]]
                last = page >= body["pages"]
            except (KeyError, TypeError, ValueError) as error:
                raise self._upstream.unexpected("GET", path, answer) from error
            if last:
                return found
            page += 1


def _event(item: dict[str, Any], listed_at: str) -> ProductCreated | ProductUpdated:
    """The product as the event of its current version (nothing named as changed)."""
    product_id, sku, name, category = item["id"], item["sku"], item["name"], item["category"]
    price = Money(item["price"]["amount"], item["price"]["currency"])
    version = item["version"]
    if not all(isinstance(text, str) for text in (product_id, sku, name, category)) or not (
        isinstance(version, int) and version >= 1
    ):
        raise ValueError(f"not a product: {item!r}")
    if version == 1:
        return ProductCreated(product_id, sku, name, category, price, version, listed_at)
    return ProductUpdated(product_id, sku, name, category, price, version, (), listed_at)
