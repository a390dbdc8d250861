"""Hand-written fakes of the service layer's ports, and the shop's things to fill them with."""

from __future__ import annotations

import asyncio
import copy
from typing import TYPE_CHECKING, Self

from bff_mobile.domain.cart import Cart, CartLine
from bff_mobile.domain.errors import InvalidCursor
from bff_mobile.domain.model import Category, OrdersPage, OrderSummary, ProductCard
from chassis.upstream import UpstreamFailure
from contracts import Money

if TYPE_CHECKING:
    from types import TracebackType


CATEGORIES = [
    Category("ceramics", "Ceramics", 1),
    Category("spices", "Spices", 2),
    Category("tea-coffee", "Tea & coffee", 1),
]


SAFFRON = ProductCard("p-saffron", "Taliouine saffron threads, 2 g", "spices", Money(1490, "EUR"))


CUMIN = ProductCard("p-cumin", "Cumin seeds, 100 g", "spices", Money(390, "EUR"))


TEA = ProductCard("p-tea", "Gunpowder green tea, 250 g", "tea-coffee", Money(850, "EUR"))


TAGINE = ProductCard("p-tagine", "Clay tagine, 30 cm", "ceramics", Money(2995, "EUR"))
PRODUCTS = [CUMIN, TAGINE, TEA, SAFFRON]


class FakeCatalog:
    """The catalog's products; ``failing`` makes every call raise, ``stalled`` hang."""

    def __init__(self, products: list[ProductCard] | None = None) -> None:
        self.products_in_stock = list(PRODUCTS if products is None else products)
        self.failing: UpstreamFailure | None = None
        self.stalled = False
        self.started = asyncio.Event()

    async def _answer(self) -> None:
        self.started.set()
        if self.failing is not None:
            raise self.failing
        if self.stalled:
            await asyncio.Event().wait()

    async def products(self, *, limit: int) -> list[ProductCard]:
        await self._answer()
        return sorted(self.products_in_stock, key=lambda p: p.name)[:limit]

    async def categories(self) -> list[Category]:
        await self._answer()
        return list(CATEGORIES)

    async def product(self, product_id: str) -> ProductCard | None:
        await self._answer()
        return next((p for p in self.products_in_stock if p.id == product_id), None)


class FakeOrders:
    """Orders per token (``<subject>;<scopes>``, as ReadableTokens reads them), listed by a
    keyset cursor as the real orders does: a cursor is the id of the last order listed."""

    def __init__(self) -> None:
        self.placed: dict[str, list[OrderSummary]] = {}
        self.failing: UpstreamFailure | None = None
        self.stalled = False
        self.tokens_seen: list[str] = []
        self.started = asyncio.Event()

    def place(self, customer: str, order: OrderSummary) -> None:
        self.placed.setdefault(customer, []).append(order)

    async def page(self, token: str, *, limit: int, before: str | None) -> OrdersPage:
        self.tokens_seen.append(token)
        self.started.set()
        if self.failing is not None:
            raise self.failing
        if self.stalled:
            await asyncio.Event().wait()
        customer = token.partition(";")[0]
        newest_first = sorted(
            self.placed.get(customer, []), key=lambda o: (o.created_at, o.id), reverse=True
        )
        if before is not None:
            last = next((o for o in newest_first if o.id == before), None)
            if last is None:
                raise InvalidCursor
            newest_first = [
                o for o in newest_first if (o.created_at, o.id) < (last.created_at, last.id)
            ]
        items = newest_first[:limit]
        more = len(newest_first) > limit
        return OrdersPage(items=items, next_before=items[-1].id if more else None)


class FakeStore:
    """What the fake database holds once committed: each customer's lines."""

    def __init__(self) -> None:
        self.lines: dict[str, dict[str, CartLine]] = {}
        self.failing: Exception | None = None


class FakeCartRepository:
    def __init__(self, lines: dict[str, dict[str, CartLine]]) -> None:
        self._lines = lines

    async def get(self, customer_id: str) -> Cart:
        mine = sorted(self._lines.get(customer_id, {}).values(), key=lambda line: line.added_at)
        return Cart(customer_id=customer_id, lines=mine)

    async def put(self, customer_id: str, line: CartLine) -> None:
        self._lines.setdefault(customer_id, {})[line.product_id] = line

    async def remove(self, customer_id: str, product_id: str) -> None:
        self._lines.get(customer_id, {}).pop(product_id, None)


class FakeUnitOfWork:
    """Each ``async with`` works on a copy that only ``commit`` puts in the store."""

    carts: FakeCartRepository

    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.commits = 0

    async def __aenter__(self) -> Self:
        if self.store.failing is not None:
            raise self.store.failing
        self._lines = copy.deepcopy(self.store.lines)
        self.carts = FakeCartRepository(self._lines)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        del self._lines

    async def commit(self) -> None:
        self.store.lines = copy.deepcopy(self._lines)
        self.commits += 1
