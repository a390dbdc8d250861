"""Identity's settings: its defaults, and clients that must ask for known scopes."""

from __future__ import annotations

import json
import secrets

import pytest
from pydantic import ValidationError

from identity.settings import ClientRegistration, IdentitySettings

# What `souk up` hands identity: a fresh secret per confidential client, per installation.
SECRETS = {name: secrets.token_urlsafe(32) for name in ("souk-cli", "bff-web", "orders")}


def test_identity_listens_on_8006_with_the_demo_clients_by_default() -> None:
    settings = IdentitySettings(client_secrets=SECRETS)

    assert settings.port == 8006
    assert settings.service == "identity"
    assert {client.client_id for client in settings.clients} == {
        "souk-cli",
        "souk-web",
        "bff-web",
        "orders",
    }


def test_settings_come_from_identity_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDENTITY_ISSUER", "https://shop.example")
    monkeypatch.setenv("IDENTITY_ACCESS_TOKEN_TTL_SECONDS", "300")

    settings = IdentitySettings(client_secrets=SECRETS)

    assert settings.issuer == "https://shop.example"
    assert settings.access_token_ttl_seconds == 300


def test_the_storefront_callback_lives_under_each_settings_own_issuer() -> None:
    first = IdentitySettings(issuer="https://shop.example/", client_secrets=SECRETS)
    second = IdentitySettings(issuer="http://127.0.0.1:9999", client_secrets=SECRETS)

    def callback(settings: IdentitySettings) -> list[str]:
        (bff,) = [c for c in settings.clients if c.client_id == "bff-web"]
        return bff.redirect_uris

    assert callback(first) == ["https://shop.example/auth/callback"]
    assert callback(second) == ["http://127.0.0.1:9999/auth/callback"]


def test_a_client_asking_for_a_scope_identity_does_not_know_is_refused() -> None:
    stranger = ClientRegistration(client_id="x", name="X", scopes=["payments:refund"])

    with pytest.raises(ValidationError, match="payments:refund"):
        IdentitySettings(clients=[stranger])


def test_identity_refuses_to_start_without_its_confidential_clients_secrets() -> None:
    # No secret ships in the code: the demo clients get theirs from the installation.
    with pytest.raises(ValidationError, match="'souk-cli' is confidential and has no secret"):
        IdentitySettings()


@pytest.mark.parametrize(
    "placeholder", ["souk-cli-development-secret", "orders-development-secret", "changeme"]
)
def test_a_placeholder_secret_is_refused(placeholder: str) -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        IdentitySettings(client_secrets={**SECRETS, "souk-cli": placeholder})


def test_the_secrets_come_from_identity_client_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDENTITY_CLIENT_SECRETS", json.dumps(SECRETS))

    settings = IdentitySettings()

    given = {c.client_id: c.secret.get_secret_value() for c in settings.clients if c.secret}
    assert given == SECRETS
    assert settings.internal_client_ids == {"bff-web", "orders"}
