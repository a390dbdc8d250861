"""Fixtures of the unit tests: the fakes of the ports (``fakes.py``), wired and filled."""

from __future__ import annotations

import pytest

from catalog.domain.commands import CreateProduct
from contracts import Money

from .fakes import FakeUnitOfWork


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


@pytest.fixture
def saffron_command() -> CreateProduct:
    return CreateProduct(
        sku="SPC-SAFFRON-2G",
        name="Taliouine saffron threads, 2 g",
        description="Hand-picked stigmas from the Taliouine plateau.",
        category="spices",
        price=Money(1490, "EUR"),
    )
