"""Security at the public edge (docs/security.md): each test is a row of its table."""

from __future__ import annotations

import json
import stat
import uuid

import httpx
import pytest

from souk.testing import client_token

from .conftest import cli_client

# What every installation shipped with before secrets were made per installation.
OLD_DEVELOPMENT_SECRETS = [
    ("souk-cli", "souk-cli-development-secret"),
    ("bff-web", "bff-web-development-secret"),
    ("orders", "orders-development-secret"),
]


def _client_credentials(client: httpx.Client, credentials: tuple[str, str]) -> httpx.Response:
    return client.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=credentials)


def test_the_installation_made_its_own_secrets_readable_by_its_owner_only(souk):
    path = souk.data_dir / "secrets.json"

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    made = json.loads(path.read_text())
    assert set(made) == {"client:souk-cli", "client:bff-web", "client:orders"}
    assert all(len(secret) >= 32 for secret in made.values())
    assert len(set(made.values())) == 3


@pytest.mark.parametrize("credentials", OLD_DEVELOPMENT_SECRETS, ids=lambda c: str(c[0]))
def test_the_old_development_secrets_open_nothing(gateway, credentials):
    response = _client_credentials(gateway, credentials)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize("client_id", ["orders", "bff-web"])
def test_a_services_own_secret_buys_no_token_through_the_gateway(souk, gateway, client_id):
    credentials = souk.client_credentials(client_id)

    outside = _client_credentials(gateway, credentials)
    inside = httpx.post(
        f"{souk.url('identity')}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=credentials,
        timeout=10,
    )

    assert outside.status_code == 400, outside.text
    assert outside.json()["error"] == "unauthorized_client"
    assert "access_token" not in outside.json()
    # The service itself, calling identity directly, still gets its token.
    assert inside.status_code == 200, inside.text


def test_a_script_still_gets_its_token_through_the_gateway(souk, gateway):
    response = _client_credentials(gateway, cli_client(souk))

    assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", ["/api/orders", "/api/notifications", "/api/mobile/cart"])
def test_a_clients_own_token_is_no_customer_on_customer_routes(souk, gateway, path):
    token = client_token(souk.gateway_url, *cli_client(souk), ["orders:read"])

    response = gateway.get(path, headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 403, response.text
    assert response.json()["type"] == "https://souk.dev/problems/customer-required"


def test_an_order_answers_with_its_public_location(souk, shopper, gateway):
    product = gateway.get("/api/catalog/products", params={"page_size": 1}).json()["items"][0]
    body = {
        "items": [{"product_id": product["id"], "quantity": 1}],
        "payment": {"card_token": "tok_ok"},
    }

    placed = shopper.post("/api/orders", json=body, headers={"Idempotency-Key": str(uuid.uuid4())})

    assert placed.status_code == 201, placed.text
    assert placed.headers["location"] == f"/api/orders/{placed.json()['id']}"


@pytest.mark.parametrize("path", ["/api/mobile/cart/", "/api/catalog/products/"])
def test_a_trailing_slash_never_redirects_to_an_instances_own_address(shopper, path):
    response = shopper.get(path, follow_redirects=False)

    assert response.status_code == 404, response.text
    assert "location" not in response.headers


def test_a_problems_instance_is_the_public_path(gateway):
    response = gateway.get("/api/catalog/products/no-such-product")

    assert response.status_code == 404
    assert response.json()["instance"] == "/api/catalog/products/no-such-product"
