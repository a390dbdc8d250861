"""A script or a service gets a token for itself with client credentials."""

# ruff: noqa: S105, S106 - token fields and secrets in tests are fixtures, not credentials

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from .conftest import CLI, SERVICE_SECRETS, WEB, token
from .validation import published_keys, validated_claims

if TYPE_CHECKING:
    import httpx


async def test_a_script_gets_a_signed_token_carrying_its_scopes(
    identity: httpx.AsyncClient,
) -> None:
    response = await token(identity, CLI, grant_type="client_credentials")

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert body["scope"] == "catalog:write orders:read"
    assert "refresh_token" not in body
    claims = validated_claims(body["access_token"], await published_keys(identity))
    assert claims["sub"] == claims["client_id"] == "souk-cli"
    assert claims["scope"] == "catalog:write orders:read"
    assert claims["iat"] == claims["nbf"] <= time.time() + 1
    assert claims["exp"] == claims["iat"] + 600
    assert claims["jti"]


async def test_a_script_may_ask_for_fewer_scopes_than_it_is_allowed(
    identity: httpx.AsyncClient,
) -> None:
    response = await token(identity, CLI, grant_type="client_credentials", scope="orders:read")

    assert response.status_code == 200
    assert response.json()["scope"] == "orders:read"


async def test_a_scope_beyond_the_clients_is_invalid_scope(identity: httpx.AsyncClient) -> None:
    response = await token(
        identity, CLI, grant_type="client_credentials", scope="orders:read orders:write"
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


@pytest.mark.parametrize(
    "credentials",
    [("souk-cli", "not-the-secret"), ("no-such-client", CLI[1])],
    ids=["wrong secret", "unknown client"],
)
async def test_a_wrong_secret_or_unknown_client_is_invalid_client(
    identity: httpx.AsyncClient, credentials: tuple[str, str]
) -> None:
    response = await token(identity, credentials, grant_type="client_credentials")

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_a_public_client_cannot_get_a_token_for_itself(identity: httpx.AsyncClient) -> None:
    response = await token(identity, grant_type="client_credentials", client_id=WEB)

    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


async def test_an_unknown_grant_type_is_unsupported(identity: httpx.AsyncClient) -> None:
    response = await token(identity, CLI, grant_type="password", username="a", password="b")

    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


async def test_a_service_gets_its_token_when_it_asks_identity_directly(
    identity: httpx.AsyncClient,
) -> None:
    orders = ("orders", SERVICE_SECRETS["orders"])

    response = await token(identity, orders, grant_type="client_credentials", scope="stock:read")

    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "stock:read"


@pytest.mark.parametrize("client_id", ["orders", "bff-web"])
async def test_a_services_token_is_not_issued_through_the_public_edge(
    identity: httpx.AsyncClient, client_id: str
) -> None:
    # The gateway marks every request it passes on with X-Forwarded-Host (and drops a
    # client's own): even with the service's secret, an outsider gets no token of it.
    response = await identity.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, SERVICE_SECRETS[client_id]),
        headers={"X-Forwarded-Host": "shop.example"},
    )

    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"
    assert "access_token" not in response.json()


async def test_a_script_still_gets_its_token_through_the_public_edge(
    identity: httpx.AsyncClient,
) -> None:
    response = await identity.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=CLI,
        headers={"X-Forwarded-Host": "shop.example"},
    )

    assert response.status_code == 200, response.text
