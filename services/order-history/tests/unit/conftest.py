"""Hand-written fakes of the service layer's ports, and a shop's worth of events to feed them."""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Self

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
from order_history.service_layer.ports import Archived

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime
    from types import TracebackType

    from contracts.events import Event
    from order_history.domain.model import OrderView, Product

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


@dataclass
class FakeStore:
    """What the fake database holds once committed."""

    archive: list[Archived] = field(default_factory=list)
    orders: dict[str, OrderView] = field(default_factory=dict)
    products: dict[str, Product] = field(default_factory=dict)
    rebuilt_at: datetime | None = None
    locks: int = 0


class FakeArchive:
    def __init__(self, store: FakeStore) -> None:
        self._store = store

    async def holds(self, message_id: str) -> bool:
        return any(a.message.message_id == message_id for a in self._store.archive)

    async def add(self, message: Message) -> None:
        self._store.archive.append(Archived(len(self._store.archive) + 1, message))

    async def count(self) -> int:
        return len(self._store.archive)

    async def after(self, seq: int, *, limit: int) -> list[Archived]:
        return [a for a in self._store.archive if a.seq > seq][:limit]


class FakeOrderViews:
    def __init__(self, store: FakeStore) -> None:
        self._store = store

    async def get(self, order_id: str) -> OrderView | None:
        return copy.deepcopy(self._store.orders.get(order_id))

    async def save(self, view: OrderView) -> None:
        self._store.orders[view.order_id] = copy.deepcopy(view)

    async def replace_all(self, views: Iterable[OrderView]) -> None:
        self._store.orders = {view.order_id: copy.deepcopy(view) for view in views}

    async def for_customer(
        self, customer_id: str, *, offset: int, limit: int
    ) -> tuple[list[OrderView], int]:
        mine = sorted(
            (v for v in self._store.orders.values() if v.listed and v.customer_id == customer_id),
            key=lambda v: (v.placed_at, v.order_id),
            reverse=True,
        )
        return copy.deepcopy(mine[offset : offset + limit]), len(mine)


class FakeProducts:
    def __init__(self, store: FakeStore) -> None:
        self._store = store

    async def get(self, product_id: str) -> Product | None:
        return self._store.products.get(product_id)

    async def save(self, product: Product) -> None:
        self._store.products[product.product_id] = product

    async def replace_all(self, products: Iterable[Product]) -> None:
        self._store.products = {p.product_id: p for p in products}

    async def some(self, product_ids: Iterable[str]) -> dict[str, Product]:
        return {i: self._store.products[i] for i in product_ids if i in self._store.products}


class FakeProjection:
    def __init__(self, store: FakeStore) -> None:
        self._store = store

    async def lock(self) -> None:
        self._store.locks += 1

    async def rebuilt(self, at: datetime) -> None:
        self._store.rebuilt_at = at


class FakeUnitOfWork:
    """Each ``async with`` works on a copy of the store that only ``commit`` makes the store."""

    archive: FakeArchive
    orders: FakeOrderViews
    products: FakeProducts
    projection: FakeProjection

    def __init__(self, store: FakeStore) -> None:
        self.store = store

    async def __aenter__(self) -> Self:
        self._working = copy.deepcopy(self.store)
        self.archive = FakeArchive(self._working)
        self.orders = FakeOrderViews(self._working)
        self.products = FakeProducts(self._working)
        self.projection = FakeProjection(self._working)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        del self._working

    async def commit(self) -> None:
        for name, value in vars(self._working).items():
            setattr(self.store, name, copy.deepcopy(value))


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def uow(store: FakeStore) -> FakeUnitOfWork:
    return FakeUnitOfWork(store)
