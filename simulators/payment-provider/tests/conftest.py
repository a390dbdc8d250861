"""The simulator app, started with default (well-behaved) settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient

from payment_provider.app import create_app
from payment_provider.settings import ProviderSettings

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def settings() -> ProviderSettings:
    return ProviderSettings(service="payment-primary", instance="payment-primary-test")


@pytest.fixture
def client(settings: ProviderSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client
