"""Billing's settings: its own prefix, its providers, and timeouts that fit together."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from billing.settings import BillingSettings


def test_billing_reads_its_settings_from_billing_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BILLING_PORT", "9003")
    monkeypatch.setenv("BILLING_PROVIDER_TIMEOUT", "1.5")
    monkeypatch.setenv("BILLING_UPSTREAMS", '{"payment-primary": ["http://127.0.0.1:9101"]}')

    settings = BillingSettings()

    assert (settings.service, settings.port, settings.provider_timeout) == ("billing", 9003, 1.5)
    assert settings.upstream(settings.primary_provider) == ["http://127.0.0.1:9101"]


def test_by_default_billing_uses_the_primary_then_the_backup_provider() -> None:
    settings = BillingSettings()

    assert (settings.primary_provider, settings.backup_provider, settings.port) == (
        "payment-primary",
        "payment-backup",
        8003,
    )


def test_an_idempotency_lease_shorter_than_two_provider_calls_is_refused() -> None:
    with pytest.raises(ValidationError, match="idempotency_lease"):
        BillingSettings(provider_timeout=10.0, idempotency_lease=20.0)
