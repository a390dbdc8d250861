from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.app import create_app
from gateway.settings import GatewaySettings
from souk.topology import default_topology_path, load_topology

AMIRA = "token-of-amira"
CATALOG_BOT = "token-of-the-catalog-bot"
CLIENTLESS = "token-naming-no-client"
SIGNED_IN = "token-amira-signed-in-for"
SCRIPT = "token-of-a-client-for-itself"


@pytest.fixture
def validator(kit):
    return kit.FakeTokenValidator(
        {
            AMIRA: kit.access_token(
                "customer-amira", "storefront", frozenset({"orders:read", "orders:write"})
            ),
            CATALOG_BOT: kit.access_token(
                "catalog-bot", "catalog-bot", frozenset({"catalog:write"})
            ),
            CLIENTLESS: kit.access_token("customer-amira", None),
            SIGNED_IN: kit.access_token(
                "customer-amira", "storefront", frozenset({"orders:read"}), grant_id="grant-1"
            ),
            SCRIPT: kit.access_token("bff-web", "bff-web", frozenset({"orders:read"})),
        }
    )


def guarded(kit, upstreams, **route):
    orders = kit.Route(prefix="/api/echo", upstream="echo", auth="required", **route)
    return kit.settings(upstreams, routes=[orders])


def bearer(token):
    return {"authorization": f"Bearer {token}"}


async def test_routes_are_public_unless_configured_otherwise(kit, upstreams, validator):
    async with kit.client(kit.settings(upstreams), token_validator=validator) as client:
        response = await client.get("/api/echo/products")
    assert response.status_code == 200
    assert "x-souk-subject" not in response.json()["headers"]


async def test_a_guarded_route_without_a_token_is_401_with_a_bearer_challenge(
    kit, upstreams, validator
):
    async with kit.client(guarded(kit, upstreams), token_validator=validator) as client:
        response = await client.get("/api/echo/orders")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["type"] == "https://souk.dev/problems/unauthorized"


async def test_an_invalid_token_is_401_saying_why_as_a_service_would(kit, upstreams, validator):
    async with kit.client(guarded(kit, upstreams), token_validator=validator) as client:
        response = await client.get("/api/echo/orders", headers=bearer("forged-token"))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        'Bearer error="invalid_token",'
        ' error_description="The access token signature does not verify"'
    )
    assert response.json()["type"] == "https://souk.dev/problems/invalid-token"
    assert response.json()["reason"] == "bad-signature"
    assert "forged-token" not in response.text


async def test_another_authorization_scheme_counts_as_no_token(kit, upstreams, validator):
    async with kit.client(guarded(kit, upstreams), token_validator=validator) as client:
        basic = await client.get("/api/echo/orders", headers={"authorization": "Basic YTpi"})
        empty = await client.get("/api/echo/orders", headers={"authorization": "Bearer "})
    assert (basic.status_code, basic.headers["www-authenticate"]) == (401, "Bearer")
    assert (empty.status_code, empty.headers["www-authenticate"]) == (401, "Bearer")


async def test_a_token_lacking_the_routes_scope_is_403_naming_the_scopes_needed(
    kit, upstreams, validator
):
    settings = guarded(kit, upstreams, scopes=("orders:read", "orders:write"))
    async with kit.client(settings, token_validator=validator) as client:
        response = await client.get("/api/echo/orders", headers=bearer(CATALOG_BOT))
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", scope="orders:read orders:write"'
    )
    assert response.json()["type"] == "https://souk.dev/problems/insufficient-scope"
    assert response.json()["required_scopes"] == ["orders:read", "orders:write"]


async def test_a_valid_token_reaches_the_upstream_with_the_caller_in_platform_headers(
    kit, upstreams, validator
):
    settings = guarded(kit, upstreams, scopes=("orders:write",))
    async with kit.client(settings, token_validator=validator) as client:
        response = await client.post("/api/echo/orders", headers=bearer(AMIRA), json={})
    assert response.status_code == 200
    seen = response.json()["headers"]
    assert seen["x-souk-subject"] == "customer-amira"
    assert seen["x-souk-client"] == "storefront"
    assert seen["x-souk-scopes"] == "orders:read orders:write"
    # Zero trust: the service checks the token again itself.
    assert seen["authorization"] == f"Bearer {AMIRA}"


async def test_a_token_naming_no_client_reaches_the_upstream_without_a_client_header(
    kit, upstreams, validator
):
    forged = {"x-souk-client": "storefront"}
    async with kit.client(guarded(kit, upstreams), token_validator=validator) as client:
        response = await client.get("/api/echo/orders", headers=bearer(CLIENTLESS) | forged)
    assert response.status_code == 200
    assert response.json()["headers"]["x-souk-subject"] == "customer-amira"
    assert "x-souk-client" not in response.json()["headers"]


async def test_a_forged_subject_header_never_reaches_the_upstream(kit, upstreams, validator):
    forged = {"x-souk-subject": "customer-someone-else", "x-souk-scopes": "admin"}
    async with kit.client(guarded(kit, upstreams), token_validator=validator) as client:
        guarded_answer = await client.get("/api/echo/orders", headers=bearer(AMIRA) | forged)
    async with kit.client(kit.settings(upstreams)) as client:
        public_answer = await client.get("/api/echo/products", headers=forged)
    assert guarded_answer.json()["headers"]["x-souk-subject"] == "customer-amira"
    assert "admin" not in guarded_answer.json()["headers"]["x-souk-scopes"]
    assert "x-souk-subject" not in public_answer.json()["headers"]
    assert "x-souk-scopes" not in public_answer.json()["headers"]


def test_a_gateway_with_guarded_routes_refuses_to_start_without_a_token_validator(kit):
    settings = guarded(kit, ["http://127.0.0.1:1"])
    with pytest.raises(ValueError, match="/api/echo need a token validator: set GATEWAY_AUTH"):
        create_app(settings)


def test_an_issuer_without_an_identity_upstream_to_fetch_keys_from_is_refused(kit):
    with pytest.raises(ValidationError, match="no 'identity' upstream"):
        kit.settings(["http://127.0.0.1:1"], auth_issuer="http://127.0.0.1:8080")


def test_the_issuer_keys_are_fetched_from_the_first_identity_instance(monkeypatch):
    monkeypatch.setenv(
        "GATEWAY_UPSTREAMS", '{"identity": ["http://127.0.0.1:8006/", "http://127.0.0.1:8016"]}'
    )
    monkeypatch.setenv("GATEWAY_AUTH_ISSUER", "http://127.0.0.1:8080")
    monkeypatch.setenv("GATEWAY_AUTH_AUDIENCE", "souk-test")
    settings = GatewaySettings()
    assert settings.jwks_url() == "http://127.0.0.1:8006/.well-known/jwks.json"
    assert (settings.auth_issuer, settings.auth_audience) == ("http://127.0.0.1:8080", "souk-test")


def test_a_public_route_cannot_name_scopes(kit):
    with pytest.raises(ValidationError, match="auth: required"):
        kit.Route(prefix="/api/orders", upstream="orders", scopes=("orders:read",))


def test_scope_names_must_be_oauth_scope_tokens(kit):
    with pytest.raises(ValidationError, match="scope names"):
        kit.Route(prefix="/api/orders", upstream="orders", auth="required", scopes=('a" b',))


def test_routes_with_auth_and_scopes_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("GATEWAY_UPSTREAMS", '{"orders": ["http://127.0.0.1:1"]}')
    monkeypatch.setenv(
        "GATEWAY_ROUTES",
        '[{"prefix": "/api/orders", "upstream": "orders", "auth": "required",'
        ' "scopes": ["orders:read"], "max_body_bytes": 65536}]',
    )
    (route,) = GatewaySettings().route_table()
    assert (route.auth, route.scopes, route.max_body_bytes) == ("required", ("orders:read",), 65536)


async def test_a_routes_body_limit_overrides_the_gateways(kit, upstreams):
    small = kit.Route(prefix="/api/echo", upstream="echo", max_body_bytes=100)
    async with kit.client(kit.settings(upstreams, routes=[small])) as client:
        refused = await client.post("/api/echo/products", content=b"x" * 101)
        accepted = await client.post("/api/echo/products", content=b"x" * 100)
    assert refused.status_code == 413
    assert accepted.status_code == 200


async def test_a_customer_route_refuses_a_clients_own_token_and_takes_a_customers(
    kit, upstreams, validator
):
    settings = guarded(kit, upstreams, scopes=("orders:read",), subject="customer")
    async with kit.client(settings, token_validator=validator) as client:
        script = await client.get("/api/echo/orders", headers=bearer(SCRIPT))
        customer = await client.get("/api/echo/orders", headers=bearer(SIGNED_IN))

    assert script.status_code == 403
    assert script.json()["type"] == "https://souk.dev/problems/customer-required"
    assert customer.status_code == 200
    assert customer.json()["headers"]["x-souk-subject"] == "customer-amira"


def test_the_default_topologys_customer_routes_need_a_customer():
    topology = load_topology(default_topology_path())
    routes = {r["prefix"]: r for r in topology.services["gateway"].env["GATEWAY_ROUTES"]}

    for prefix in ("/api/orders", "/api/notifications", "/api/mobile"):
        assert routes[prefix].get("subject") == "customer", prefix
