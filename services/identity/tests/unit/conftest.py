"""Fixtures of the unit tests: the fakes of the ports (``fakes.py``), wired and filled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from identity.domain.model import (
    Client,
)
from identity.service_layer.oauth import AuthorizationServer, TokenPolicy

from .fakes import (
    FakePasswords,
    FakeSigner,
    FakeStore,
    FakeUnitOfWork,
)

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
SOUK_WEB = Client(
    client_id="souk-web",
    name="Souk shop front",
    secret_hash=None,
    scopes=frozenset({"orders:read", "orders:write"}),
    redirect_uris=("http://127.0.0.1:8765/callback",),
)


@pytest.fixture
def store() -> FakeStore:
    return FakeStore(clients={SOUK_WEB.client_id: SOUK_WEB})


@pytest.fixture
def uow(store: FakeStore) -> FakeUnitOfWork:
    return FakeUnitOfWork(store)


@pytest.fixture
def server(store: FakeStore) -> AuthorizationServer:
    policy = TokenPolicy(
        issuer="http://souk.test",
        audience="souk",
        access_token_ttl=timedelta(minutes=10),
        refresh_token_ttl=timedelta(days=14),
        code_ttl=timedelta(seconds=60),
    )
    return AuthorizationServer(
        lambda: FakeUnitOfWork(store), FakePasswords(), FakeSigner(), policy, lambda: NOW
    )
