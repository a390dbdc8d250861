"""Fixtures of the unit tests: the fakes of the ports (``fakes.py``), wired and filled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bff_web.domain.session import Session
from bff_web.domain.shop import Money, Product

from .fakes import FakeIdentity, FakeSessionStore

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
TTL = timedelta(days=7)


def product(product_id: str, category: str = "spices", price: int = 1490) -> Product:
    return Product(
        id=product_id,
        sku=f"SKU-{product_id.upper()}",
        name=f"The {product_id}",
        description="",
        category=category,
        price=Money(price, "EUR"),
    )


@pytest.fixture
def identity() -> FakeIdentity:
    return FakeIdentity()


@pytest.fixture
def store() -> FakeSessionStore:
    return FakeSessionStore()


@pytest.fixture
def session(store: FakeSessionStore) -> Session:
    session = Session.start(NOW, TTL)
    store.sessions[session.id] = session
    return session
