"""Fixtures of the unit tests: fakes of the ports (``fakes.py``), filled with the shop's things."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bff_mobile.domain.model import OrderSummary
from chassis.upstream import UpstreamFailure
from contracts import Money

from .fakes import FakeCatalog, FakeOrders, FakeStore, FakeUnitOfWork

AT = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def down(upstream: str) -> UpstreamFailure:
    return UpstreamFailure(upstream, "connection refused", transient=True)


def summary(n: int, customer: str = "c-1") -> OrderSummary:
    """The ``n``-th order placed (later ones are newer)."""
    return OrderSummary(
        id=f"o-{customer}-{n}",
        status="CONFIRMED",
        total=Money(1490 * n, "EUR"),
        item_count=n,
        created_at=AT.replace(minute=n),
    )


@pytest.fixture
def catalog() -> FakeCatalog:
    return FakeCatalog()


@pytest.fixture
def orders() -> FakeOrders:
    return FakeOrders()


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def uow(store: FakeStore) -> FakeUnitOfWork:
    return FakeUnitOfWork(store)
