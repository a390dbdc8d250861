"""The catalog's public REST API, implementing the Catalog port."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from bff_mobile.domain.model import Category, ProductCard
from chassis.answers import read_answer
from contracts import Money

if TYPE_CHECKING:
    from chassis.upstream import HttpUpstream


class CatalogClient:
    """Reads ``GET /products``, ``GET /products/{id}`` and ``GET /categories``."""

    def __init__(self, upstream: HttpUpstream) -> None:
        self._upstream = upstream

    async def products(self, *, limit: int) -> list[ProductCard]:
        path = "/products?" + urlencode({"page_size": limit, "sort": "name"})
        body = await self._ok(path)
        return read_answer(
            self._upstream.name, "GET", path, lambda: [_card(item) for item in body["items"]]
        )

    async def categories(self) -> list[Category]:
        path = "/categories"
        body = await self._ok(path)
        return read_answer(
            self._upstream.name,
            "GET",
            path,
            lambda: [
                Category(str(item["slug"]), str(item["name"]), int(item["product_count"]))
                for item in body
            ],
        )

    async def product(self, product_id: str) -> ProductCard | None:
        path = f"/products/{quote(product_id, safe='')}"
        answer = await self._upstream.call("GET", path)
        if answer.status == 404:
            return None
        if answer.status != 200:
            raise self._upstream.unexpected("GET", path, answer)
        return read_answer(self._upstream.name, "GET", path, lambda: _card(answer.body))

    async def _ok(self, path: str) -> Any:
        answer = await self._upstream.call("GET", path)
        if answer.status != 200:
            raise self._upstream.unexpected("GET", path, answer)
        return answer.body


def _card(item: Any) -> ProductCard:
    return ProductCard(
        id=str(item["id"]),
        name=str(item["name"]),
        category=str(item["category"]),
        price=Money(item["price"]["amount"], item["price"]["currency"]),
    )
