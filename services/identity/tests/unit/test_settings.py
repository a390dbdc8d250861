"""Identity's settings: its defaults, and clients that must ask for known scopes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from identity.settings import ClientRegistration, IdentitySettings


def test_identity_listens_on_8006_with_the_demo_clients_by_default() -> None:
    settings = IdentitySettings()

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

    settings = IdentitySettings()

    assert settings.issuer == "https://shop.example"
    assert settings.access_token_ttl_seconds == 300


def test_the_storefront_callback_lives_under_each_settings_own_issuer() -> None:
    first = IdentitySettings(issuer="https://shop.example/")
    second = IdentitySettings(issuer="http://127.0.0.1:9999")

    def callback(settings: IdentitySettings) -> list[str]:
        (bff,) = [c for c in settings.clients if c.client_id == "bff-web"]
        return bff.redirect_uris

    assert callback(first) == ["https://shop.example/auth/callback"]
    assert callback(second) == ["http://127.0.0.1:9999/auth/callback"]


def test_a_client_asking_for_a_scope_identity_does_not_know_is_refused() -> None:
    stranger = ClientRegistration(client_id="x", name="X", scopes=["payments:refund"])

    with pytest.raises(ValidationError, match="payments:refund"):
        IdentitySettings(clients=[stranger])
