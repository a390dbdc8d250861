"""Fixtures of the unit tests: the fakes of the ports (``fakes.py``), wired and filled."""

from __future__ import annotations

import pytest

from inventory.domain.model import StockItem

from .fakes import FakeClock, FakeUnitOfWork


@pytest.fixture
def uow() -> FakeUnitOfWork:
    """A fake inventory stocking 10 saffron (SPC-SAFFRON-2G) and 3 rugs (RUG-ZANAFI-90X140)."""
    return FakeUnitOfWork(
        StockItem(sku="SPC-SAFFRON-2G", on_hand=10), StockItem(sku="RUG-ZANAFI-90X140", on_hand=3)
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
