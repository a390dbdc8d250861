"""Security at the public edge (docs/security.md): each test is a row of its table."""

from __future__ import annotations

import json
import stat

import httpx
import pytest

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
