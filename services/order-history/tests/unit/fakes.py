"""Hand-written fakes of the ports, for the tests beside this file (imported, not fixtures)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Self

from chassis.messaging import Message
from order_history.service_layer.ports import Archived

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime
    from types import TracebackType

    from order_history.domain.model import OrderView, Product


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
