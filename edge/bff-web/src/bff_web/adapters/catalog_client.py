"""The catalog's public REST API (``/products``, ``/products/{id}``, ``/categories``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from bff_web.domain.errors import ProductNotFound
from bff_web.domain.shop import Category, Money, Product, ProductPage
from chassis.answers import read_answer

if TYPE_CHECKING:
    from chassis.upstream import HttpUpstream


class CatalogClient:
    """Implements the Catalog port; browsing needs no token."""

    def __init__(self, upstream: HttpUpstream) -> None:
        self._upstream = upstream

    async def categories(self) -> list[Category]:
        body = await self._get("/categories")
        return read_answer(
            self._upstream.name, "GET", "/categories", lambda: [_category(c) for c in body]
        )

    async def products(
        self,
        *,
        category: str | None,
        query: str | None,
        page: int,
        page_size: int,
        sort: str | None = None,
        min_price: int | None = None,
        max_price: int | None = None,
    ) -> ProductPage:
        parameters: dict[str, str | int] = {"page": page, "page_size": page_size}
        if category:
            parameters["category"] = category
        if query:
            parameters["q"] = query
        if sort:
            parameters["sort"] = sort
        if min_price is not None:
            parameters["min_price"] = min_price
        if max_price is not None:
            parameters["max_price"] = max_price
        path = f"/products?{urlencode(parameters)}"
        body = await self._get(path)
        return read_answer(
            self._upstream.name,
            "GET",
            path,
            lambda: ProductPage(
                items=[_product(item) for item in body["items"]],
                page=int(body["page"]),
                pages=int(body["pages"]),
                total=int(body["total"]),
            ),
        )

    async def product(self, product_id: str) -> Product:
        path = f"/products/{quote(product_id, safe='')}"
        answer = await self._upstream.call("GET", path)
        if answer.status == 404:
            raise ProductNotFound(product_id)
        if answer.status != 200:
            raise self._upstream.unexpected("GET", path, answer)
        return read_answer(self._upstream.name, "GET", path, lambda: _product(answer.body))

    async def _get(self, path: str) -> Any:
        answer = await self._upstream.call("GET", path)
        if answer.status != 200:
            raise self._upstream.unexpected("GET", path, answer)
        return answer.body


def _category(body: Any) -> Category:
    return Category(str(body["slug"]), str(body["name"]), int(body["product_count"]))


def _product(body: Any) -> Product:
    return Product(
        id=str(body["id"]),
        sku=str(body["sku"]),
        name=str(body["name"]),
        description=str(body.get("description") or ""),
        category=str(body["category"]),
        price=Money(int(body["price"]["amount"]), str(body["price"]["currency"])),
    )
