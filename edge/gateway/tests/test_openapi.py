from __future__ import annotations

import contextlib
import json

import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel

import chassis
from chassis.problems import problem_responses
from gateway.openapi import public_path
from gateway.settings import Route


class Product(BaseModel):
    sku: str
    price: int


class OrderLine(BaseModel):
    sku: str
    quantity: int


class Order(BaseModel):
    id: str
    lines: list[OrderLine]


class Orders:
    # Named like the catalog's Product but shaped differently: the two must not merge.
    class Product(BaseModel):
        order_id: str


def catalog_app() -> FastAPI:
    router = APIRouter()

    @router.get("/products")
    async def list_products() -> list[Product]:
        return []

    @router.get("/products/{product_id}")
    async def get_product(product_id: str) -> Product:
        return Product(sku=product_id, price=1)

    return chassis.create_app(
        chassis.ServiceSettings(service="catalog"), title="catalog", routers=[router]
    )


def orders_app() -> FastAPI:
    router = APIRouter()

    @router.get("/orders")
    async def list_orders() -> list[Order]:
        return []

    # Its own 401, as every service's: a problem of the service's shape.
    @router.get("/orders/{order_id}", responses=problem_responses(401, 404))
    async def get_order(order_id: str) -> Order:
        return Order(id=order_id, lines=[])

    @router.get("/orders/{order_id}/product")
    async def ordered_product(order_id: str) -> Orders.Product:
        return Orders.Product(order_id=order_id)

    @router.post("/internal/replay")
    async def replay() -> None:
        return None

    @router.get("/readyz-detail", include_in_schema=True)
    async def not_routed() -> None:
        return None

    return chassis.create_app(
        chassis.ServiceSettings(service="orders"), title="orders", routers=[router]
    )


@contextlib.asynccontextmanager
async def shop(kit, *, orders_up: bool = True):
    """A gateway in front of a live catalog and (unless told otherwise) a live orders service."""
    orders_port = kit.free_port()
    async with kit.serving(catalog_app(), kit.free_port()) as catalog:
        orders_running = (
            kit.serving(orders_app(), orders_port)
            if orders_up
            else contextlib.nullcontext(f"http://127.0.0.1:{orders_port}")
        )
        async with orders_running as orders:
            settings = kit.settings(
                [catalog],
                upstreams={"catalog": [catalog], "orders": [orders]},
                routes=[
                    kit.Route(prefix="/api/catalog", upstream="catalog"),
                    kit.Route(
                        prefix="/api/orders",
                        upstream="orders",
                        rewrite="/orders",
                        auth="required",
                        scopes=("orders:read",),
                    ),
                ],
            )
            async with kit.client(settings, token_validator=kit.FakeTokenValidator({})) as client:
                yield client


async def published(client) -> dict:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


async def test_the_document_lists_each_upstream_path_under_its_public_prefix(kit):
    async with shop(kit) as client:
        document = await published(client)
    assert document["openapi"].startswith("3.1")
    assert sorted(document["paths"]) == [
        "/api/catalog/products",
        "/api/catalog/products/{product_id}",
        "/api/orders",
        "/api/orders/{order_id}",
        "/api/orders/{order_id}/product",
    ]


async def test_internal_and_unrouted_upstream_paths_stay_out_of_the_document(kit):
    async with shop(kit) as client:
        paths = (await published(client))["paths"]
    assert not any("internal" in path or "readyz" in path for path in paths)


async def test_schemas_of_the_same_name_and_different_shape_are_kept_apart(kit):
    async with shop(kit) as client:
        document = await published(client)
    schemas = document["components"]["schemas"]
    assert set(schemas["catalog.Product"]["properties"]) == {"sku", "price"}
    assert set(schemas["orders.Product"]["properties"]) == {"order_id"}
    ordered = document["paths"]["/api/orders/{order_id}/product"]["get"]
    answer = ordered["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/orders.Product"}


async def test_schemas_alike_in_every_upstream_are_kept_once_under_their_own_name(kit):
    async with shop(kit) as client:
        schemas = (await published(client))["components"]["schemas"]
    assert "Problem" in schemas
    assert "catalog.Problem" not in schemas


async def test_guarded_routes_declare_the_bearer_token_and_their_401_and_403(kit):
    async with shop(kit) as client:
        document = await published(client)
    order = document["paths"]["/api/orders/{order_id}"]["get"]
    assert order["security"] == [{"bearerAuth": ["orders:read"]}]
    assert {"401", "403"} <= set(order["responses"])
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}


async def test_a_401_the_service_documents_may_be_the_gateways_own_problem_too(kit):
    # The gateway refuses a missing token before the service sees it: its problem (without,
    # say, bff-mobile's `code`) must fit the document as well as the service's own.
    async with shop(kit) as client:
        document = await published(client)
    order = document["paths"]["/api/orders/{order_id}"]["get"]["responses"]["401"]
    schema = order["content"]["application/problem+json"]["schema"]
    assert schema == {
        "anyOf": [
            {"$ref": "#/components/schemas/Problem"},
            {"$ref": "#/components/schemas/GatewayProblem"},
        ]
    }
    assert "application/json" not in order["content"]
    assert "WWW-Authenticate" in order["headers"]


async def test_public_routes_declare_no_token(kit):
    async with shop(kit) as client:
        document = await published(client)
    products = document["paths"]["/api/catalog/products"]["get"]
    assert "security" not in products
    assert "401" not in products["responses"]


async def test_an_upstream_that_is_down_leaves_out_its_paths_with_a_warning(kit, capsys):
    async with shop(kit, orders_up=False) as client:
        document = await published(client)
    assert sorted(document["paths"]) == [
        "/api/catalog/products",
        "/api/catalog/products/{product_id}",
    ]
    logs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    warned = [log for log in logs if log["level"] == "warning"]
    assert any(log.get("upstream") == "orders" for log in warned)


async def test_upstream_documents_are_reused_for_a_short_while(kit):
    catalog_port, orders_port = kit.free_port(), kit.free_port()
    settings = kit.settings(
        [f"http://127.0.0.1:{catalog_port}"],
        upstreams={
            "catalog": [f"http://127.0.0.1:{catalog_port}"],
            "orders": [f"http://127.0.0.1:{orders_port}"],
        },
        routes=[kit.Route(prefix="/api/catalog", upstream="catalog")],
    )
    async with kit.client(settings) as client:
        async with kit.serving(catalog_app(), catalog_port):
            first = await published(client)
        # The catalog has stopped; the document fetched a moment ago still stands.
        again = await published(client)
    assert "/api/catalog/products" in first["paths"]
    assert again["paths"] == first["paths"]


@pytest.mark.parametrize(
    ("route", "upstream_path", "public"),
    [
        (Route(prefix="/api/catalog", upstream="c"), "/products", "/api/catalog/products"),
        (Route(prefix="/api/catalog", upstream="c"), "/", "/api/catalog"),
        (
            Route(prefix="/api/orders", upstream="o", rewrite="/orders"),
            "/orders/{id}",
            "/api/orders/{id}",
        ),
        (Route(prefix="/api/orders", upstream="o", rewrite="/orders"), "/orders", "/api/orders"),
        (Route(prefix="/api/orders", upstream="o", rewrite="/orders"), "/ordersx", None),
        (Route(prefix="/api/orders", upstream="o", rewrite="/orders"), "/carts", None),
        (Route(prefix="/oauth", upstream="i", strip_prefix=False), "/oauth/token", "/oauth/token"),
        (Route(prefix="/oauth", upstream="i", strip_prefix=False), "/users", None),
    ],
)
def test_an_upstream_path_is_public_where_the_route_sends_it_back(route, upstream_path, public):
    assert public_path(route, upstream_path) == public


async def test_every_operation_documents_what_the_gateway_itself_may_answer(kit):
    async with shop(kit) as client:
        document = await published(client)
    products = document["paths"]["/api/catalog/products"]["get"]["responses"]
    order = document["paths"]["/api/orders/{order_id}"]["get"]["responses"]

    gateway_problem = {"$ref": "#/components/schemas/GatewayProblem"}
    for status in ("404", "429", "502", "503", "504"):
        assert products[status]["content"]["application/problem+json"]["schema"] == (
            gateway_problem
        )
    # The service's own 404 (no such order) or the gateway's (no route): either fits.
    assert order["404"]["content"]["application/problem+json"]["schema"]["anyOf"][1] == (
        gateway_problem
    )
    # No body, no 413.
    assert "413" not in products
