"""Fixtures of the unit tests: the fakes of the ports (``fakes.py``), wired and filled."""

from __future__ import annotations

from datetime import timedelta

import pytest

from billing.domain.commands import AuthorizePayment
from contracts import Money

from .fakes import (
    FakeProvider,
    FakeUnitOfWork,
)

ACCEPTED_CARD = "tok_ok"
LEASE = timedelta(seconds=30)


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


@pytest.fixture
def primary() -> FakeProvider:
    return FakeProvider("payment-primary")


@pytest.fixture
def backup() -> FakeProvider:
    return FakeProvider("payment-backup")


@pytest.fixture
def providers(primary: FakeProvider, backup: FakeProvider) -> list[FakeProvider]:
    return [primary, backup]


@pytest.fixture
def saffron_order() -> AuthorizePayment:
    return AuthorizePayment(
        order_id="order-1",
        amount=Money(1490, "EUR"),
        card_token=ACCEPTED_CARD,
        idempotency_key="key-1",
    )
