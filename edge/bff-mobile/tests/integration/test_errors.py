"""Token checks and the stable error codes the app switches on, documented in the OpenAPI."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from bff_mobile.entrypoints.problems import ErrorCode
from chassis.testing import readable_client_bearer

from .conftest import PROBLEM, bearer

if TYPE_CHECKING:
    import httpx

ROUTES = [
    ("GET", "/mobile/home"),
    ("GET", "/mobile/orders"),
    ("GET", "/mobile/cart"),
    ("PUT", "/mobile/cart/items/p-saffron"),
    ("DELETE", "/mobile/cart/items/p-saffron"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_without_a_token_every_route_is_a_401_unauthorized_with_a_bearer_challenge(
    mobile: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await mobile.request(method, path, json={"qty": 1}, headers={"Authorization": ""})

    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["code"] == "unauthorized"


async def test_a_refused_token_is_a_401_unauthorized_too(mobile: httpx.AsyncClient) -> None:
    response = await mobile.get("/mobile/home", headers={"Authorization": "Bearer forged"})

    assert response.status_code == 401
    assert (response.json()["code"], response.json()["reason"]) == ("unauthorized", "bad-signature")


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("GET", "/mobile/home", "orders:read"),
        ("GET", "/mobile/orders", "orders:read"),
        ("GET", "/mobile/cart", "orders:read"),
        ("PUT", "/mobile/cart/items/p-saffron", "orders:write"),
        ("DELETE", "/mobile/cart/items/p-saffron", "orders:write"),
    ],
)
async def test_a_token_without_the_routes_scope_is_a_403_forbidden(
    mobile: httpx.AsyncClient, method: str, path: str, scope: str
) -> None:
    other = "orders:write" if scope == "orders:read" else "orders:read"

    response = await mobile.request(method, path, json={"qty": 1}, headers=bearer("c-1", other))

    assert response.status_code == 403
    assert (response.json()["code"], response.json()["required_scopes"]) == ("forbidden", [scope])


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_a_clients_own_token_is_no_customer_on_any_route(
    mobile: httpx.AsyncClient, method: str, path: str
) -> None:
    # Called directly, not through the gateway (which refuses it too): zero trust.
    token = readable_client_bearer("bff-web", "orders:read", "orders:write")

    response = await mobile.request(method, path, json={"qty": 1}, headers=token)

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert response.json()["type"].endswith("/customer-required")


async def test_an_unknown_route_is_a_404_not_found(mobile: httpx.AsyncClient) -> None:
    response = await mobile.get("/mobile/wishlist")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


async def test_a_wrong_method_is_a_405_method_not_allowed(mobile: httpx.AsyncClient) -> None:
    response = await mobile.post("/mobile/home")

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


async def test_the_openapi_documents_each_routes_problems_and_every_code(
    mobile: httpx.AsyncClient,
) -> None:
    document = (await mobile.get("/openapi.json")).json()

    problem = document["components"]["schemas"]["MobileProblem"]
    code = document["components"]["schemas"]["ErrorCode"]
    assert "code" in problem["required"]
    assert set(code["enum"]) == {str(c) for c in ErrorCode}
    orders = document["paths"]["/mobile/orders"]["get"]["responses"]
    assert {"200", "304", "400", "401", "403", "422", "503"} <= set(orders)
    assert orders["400"]["content"][PROBLEM]["schema"] == {
        "$ref": "#/components/schemas/MobileProblem"
    }
