"""Fixtures of the unit tests: the fakes of the ports (``fakes.py``), wired and filled."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from chassis.messaging import Message
from contracts import Money
from contracts.events import (
    OrderConfirmed,
    OrderItem,
    OrderPlaced,
    PaymentAuthorized,
    PaymentCaptured,
    PricedItem,
    ProductCreated,
    ProductUpdated,
    ReservationCommitted,
    StockLine,
    StockReserved,
)
from order_history.domain.model import order_id_of

from .fakes import (
    FakeStore,
    FakeUnitOfWork,
)

if TYPE_CHECKING:
    from contracts.events import Event

SAFFRON_ID = "9400e52f-a224-50bf-96af-9db31b72c0e1"
TAGINE_ID = "1d5c3a0e-7b1e-5f55-8a59-5b1b2f0d7c11"


def at(minute: int) -> str:
    return f"2026-11-25T10:{minute:02d}:00+00:00"


SAFFRON_CREATED = ProductCreated(
    SAFFRON_ID, "SPC-SAFFRON-2G", "Saffron threads", "spices", Money(1490, "EUR"), 1, at(0)
)
SAFFRON_RENAMED = ProductUpdated(
    SAFFRON_ID,
    "SPC-SAFFRON-2G",
    "Taliouine saffron threads, 2 g",
    "spices",
    Money(1490, "EUR"),
    2,
    ("name",),
    at(1),
)
TAGINE_CREATED = ProductCreated(
    TAGINE_ID, "CER-TAGINE-30CM", "Clay tagine, 30 cm", "ceramics", Money(2995, "EUR"), 1, at(0)
)

# Order o-1 of customer c-1, confirmed: one event of each of its streams' stages.
PLACED = OrderPlaced("o-1", "c-1", (OrderItem(SAFFRON_ID, 2), OrderItem(TAGINE_ID, 1)), at(10))
RESERVED = StockReserved(
    "o-1", (StockLine("SPC-SAFFRON-2G", 2), StockLine("CER-TAGINE-30CM", 1)), at(25), at(11)
)
AUTHORIZED = PaymentAuthorized("pay-1", "o-1", Money(5975, "EUR"), "payment-primary", at(12))
CAPTURED = PaymentCaptured("pay-1", "o-1", Money(5975, "EUR"), at(13), customer_id="c-1")
COMMITTED = ReservationCommitted(
    "o-1", (StockLine("SPC-SAFFRON-2G", 2), StockLine("CER-TAGINE-30CM", 1)), at(14)
)
CONFIRMED = OrderConfirmed(
    "o-1",
    "c-1",
    (
        PricedItem(SAFFRON_ID, "SPC-SAFFRON-2G", "Saffron threads", 2, Money(1490, "EUR")),
        PricedItem(TAGINE_ID, "CER-TAGINE-30CM", "Clay tagine, 30 cm", 1, Money(2995, "EUR")),
    ),
    Money(5975, "EUR"),
    at(15),
)
CONFIRMED_STORY: tuple[Event, ...] = (PLACED, RESERVED, AUTHORIZED, CAPTURED, COMMITTED, CONFIRMED)


def message(event: Event, *, key: str | None = None, message_id: str | None = None) -> Message:
    """``event`` as its producer's outbox would publish it."""
    return Message(
        topic=event.topic,
        key=key or order_id_of(event) or getattr(event, "product_id", "no-key"),
        event_type=event.event_type,
        schema_version=event.schema_version,
        payload=event.to_json(),
        message_id=message_id or uuid.uuid4().hex,
    )


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def uow(store: FakeStore) -> FakeUnitOfWork:
    return FakeUnitOfWork(store)
