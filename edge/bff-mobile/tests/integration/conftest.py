"""bff-mobile on a migrated SQLite file, its real clients calling stand-ins of catalog and
orders that listen on loopback ports, and a fake of the access-token validator."""

from __future__ import annotations

import asyncio
import base64
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bff_mobile.app import create_app
from bff_mobile.settings import BffMobileSettings
from chassis.testing import ReadableTokens

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

PROBLEM = "application/problem+json"

SAFFRON = {
    "id": "p-saffron",
    "sku": "SPC-SAFFRON-2G",
    "name": "Taliouine saffron threads, 2 g",
    "description": "Hand-picked.",
    "category": "spices",
    "price": {"amount": 1490, "currency": "EUR"},
    "version": 1,
}
TEA = {
    **SAFFRON,
    "id": "p-tea",
    "sku": "TEA-GUNPOWDER-250G",
    "name": "Gunpowder green tea, 250 g",
    "category": "tea-coffee",
    "price": {"amount": 850, "currency": "EUR"},
}
TAGINE = {
    **SAFFRON,
    "id": "p-tagine",
    "sku": "CER-TAGINE-30CM",
    "name": "Clay tagine, 30 cm",
    "category": "ceramics",
    "price": {"amount": 2995, "currency": "EUR"},
}
CATEGORIES = [
    {"slug": "ceramics", "name": "Ceramics", "product_count": 1},
    {"slug": "spices", "name": "Spices", "product_count": 1},
    {"slug": "tea-coffee", "name": "Tea & coffee", "product_count": 1},
]


def bearer(subject: str, *scopes: str) -> dict[str, str]:
    """The Authorization header of a token ReadableTokens reads as ``subject``'s.

    With no scopes, a customer's: orders:read and orders:write.
    """
    granted = scopes or ("orders:read", "orders:write")
    return {"Authorization": f"Bearer {subject};{','.join(granted)}"}


@dataclass
class StandIn:
    """A service's stand-in: ``down`` answers 503 to everything, ``slow`` waits that long."""

    down: bool = False
    slow: float = 0.0
    requests: list[web.Request] = field(default_factory=list)

    async def delay(self, request: web.Request) -> web.Response | None:
        self.requests.append(request)
        if self.slow:
            await asyncio.sleep(self.slow)
        if self.down:
            return web.json_response({"title": "down"}, status=503)
        return None


class CatalogStandIn(StandIn):
    """Catalog's public API over three products, in its JSON."""

    products = (SAFFRON, TEA, TAGINE)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/products", self.list_products)
        app.router.add_get("/products/{id}", self.get_product)
        app.router.add_get("/categories", self.categories)
        return app

    async def list_products(self, request: web.Request) -> web.Response:
        if (answer := await self.delay(request)) is not None:
            return answer
        items = sorted(self.products, key=lambda p: str(p["name"]))
        return web.json_response(
            {"items": items, "page": 1, "page_size": 100, "total": len(items), "pages": 1}
        )

    async def get_product(self, request: web.Request) -> web.Response:
        if (answer := await self.delay(request)) is not None:
            return answer
        found = [p for p in self.products if p["id"] == request.match_info["id"]]
        if not found:
            return web.json_response(
                {
                    "type": "https://souk.dev/problems/product-not-found",
                    "title": "Product not found",
                    "status": 404,
                },
                status=404,
            )
        return web.json_response(found[0])

    async def categories(self, request: web.Request) -> web.Response:
        if (answer := await self.delay(request)) is not None:
            return answer
        return web.json_response(CATEGORIES)


class OrdersStandIn(StandIn):
    """Orders' ``GET /orders`` with its keyset cursor, each customer's orders by token.

    A customer's orders are placed with :meth:`place`; the cursor is the base64 of the index
    of the last order listed, in the order they were placed.
    """

    def __init__(self) -> None:
        super().__init__()
        self.placed: dict[str, list[dict[str, Any]]] = {}
        self.revoked: set[str] = set()
        """Customers whose tokens orders refuses, as after a sign-out it heard of first."""

    def place(self, customer: str, *, quantity: int = 1, status: str = "CONFIRMED") -> str:
        mine = self.placed.setdefault(customer, [])
        number = len(mine) + 1
        order_id = f"o-{customer}-{number}"
        mine.append(
            {
                "id": order_id,
                "customer_id": customer,
                "status": status,
                "items": [{"product_id": "p-saffron", "quantity": quantity}],
                "total": {"amount": 1490 * quantity, "currency": "EUR"},
                "created_at": f"2026-11-25T10:{number:02d}:00Z",
            }
        )
        return order_id

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/orders", self.list_orders)
        return app

    async def list_orders(self, request: web.Request) -> web.Response:
        if (answer := await self.delay(request)) is not None:
            return answer
        subject = request.headers.get("Authorization", "").removeprefix("Bearer ").split(";")[0]
        if not subject or subject in self.revoked:
            return web.json_response({"title": "Unauthorized"}, status=401)
        mine = self.placed.get(subject, [])
        end = len(mine)
        before = request.query.get("before")
        if before is not None and len(before) > 200:
            return web.json_response({"title": "The request is not valid"}, status=422)
        if before is not None:
            try:
                end = int(base64.urlsafe_b64decode(before))
            except ValueError:
                return web.json_response(
                    {
                        "type": "https://souk.dev/problems/invalid-cursor",
                        "status": 400,
                        "title": "Invalid cursor",
                    },
                    status=400,
                )
        size = int(request.query.get("page_size", "20"))
        start = max(end - size, 0)
        items = mine[start:end][::-1]
        next_before = base64.urlsafe_b64encode(str(start).encode()).decode() if start else None
        return web.json_response(
            {
                "items": items,
                "page": 1,
                "page_size": size,
                "total": end,
                "pages": 1,
                "next_before": next_before,
            }
        )


async def serve(app: web.Application) -> TestServer:
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


def nothing_listening() -> str:
    """The URL of a loopback port nobody listens on: calls to it are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def catalog() -> CatalogStandIn:
    return CatalogStandIn()


@pytest.fixture
def orders() -> OrdersStandIn:
    return OrdersStandIn()


@pytest.fixture
def upstream_urls() -> dict[str, list[str]]:
    """Filled in by ``mobile`` with the stand-ins' URLs; a test may replace one first."""
    return {}


@pytest.fixture
async def mobile(
    tmp_path: Path,
    catalog: CatalogStandIn,
    orders: OrdersStandIn,
    upstream_urls: dict[str, list[str]],
) -> AsyncIterator[httpx.AsyncClient]:
    """bff-mobile, started and migrated, calling the stand-ins; requests carry c-1's token."""
    catalog_server, orders_server = await serve(catalog.app()), await serve(orders.app())
    urls = {
        "catalog": [str(catalog_server.make_url(""))],
        "orders": [str(orders_server.make_url(""))],
        **upstream_urls,
    }
    settings = BffMobileSettings(
        data_dir=tmp_path,
        instance="bff-mobile-test",
        upstreams=urls,
        shutdown_timeout=1,
        catalog_timeout=0.5,
        orders_timeout=0.5,
        part_timeout=1.0,
    )
    app = create_app(settings)
    app.state.token_validator = ReadableTokens(client_id="souk-mobile")
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://bff-mobile",
                headers=bearer("c-1"),
            ) as client,
        ):
            yield client
    finally:
        await catalog_server.close()
        await orders_server.close()
