"""Hand-written fakes of the checkout's three ports (catalog, inventory, billing), and of
the access-token validator.

Each port fake behaves like the real service where the checkout depends on it (idempotent by
reservation id and by order id), records the calls it gets, and can be told to fail:
before its effect (the call never arrived) or after it (the answer was lost).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from contracts import Money
from orders.domain.errors import CheckoutRefused, OutOfStock, PaymentDeclined, UnknownProduct
from orders.domain.model import ProductSnapshot
from orders.service_layer.ports import NoUsableAnswer

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from orders.service_layer.ports import StockLine

SAFFRON = ProductSnapshot(
    product_id="8d3f7c52-saffron",
    sku="SPC-SAFFRON-2G",
    name="Taliouine saffron threads, 2 g",
    price=Money(1490, "EUR"),
)
TEA = ProductSnapshot(
    product_id="1c9e4a07-tea",
    sku="TEA-GUNPOWDER-250G",
    name="Gunpowder green tea, 250 g",
    price=Money(850, "EUR"),
)
GOOD_CARD = "tok_ok"
DECLINED_CARD = "tok_declined"


CUSTOMER = "c-1"
CUSTOMER_SCOPES = ("orders:read", "orders:write")


def bearer(subject: str = CUSTOMER, *scopes: str) -> dict[str, str]:
    """The Authorization header of a token ReadableTokens reads as ``subject``'s.

    With no scopes, the customer's: orders:read and orders:write.
    """
    return {"Authorization": f"Bearer {subject};{','.join(scopes or CUSTOMER_SCOPES)}"}


def unavailable(upstream: str = "fake") -> NoUsableAnswer:
    return NoUsableAnswer(f"{upstream}: connection refused", transient=True)


class Scripted:
    """Records calls by method name, and plays the failures and hooks queued for them."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self._before: dict[str, list[BaseException]] = defaultdict(list)
        self._after: dict[str, list[BaseException]] = defaultdict(list)
        self._during: dict[str, Callable[[], Awaitable[None]]] = {}

    def fail(self, method: str, *failures: BaseException, after_effect: bool = False) -> None:
        """Raise these on the next calls of ``method``, before its effect or after it."""
        (self._after if after_effect else self._before)[method].extend(failures)

    def during(self, method: str, hook: Callable[[], Awaitable[None]]) -> None:
        """Run ``hook`` once, while the next call of ``method`` is in flight."""
        self._during[method] = hook

    def count(self, method: str) -> int:
        return self.calls.count(method)

    async def _enter(self, method: str) -> None:
        self.calls.append(method)
        hook = self._during.pop(method, None)
        if hook is not None:
            await hook()
        if self._before[method]:
            raise self._before[method].pop(0)

    def _leave(self, method: str) -> None:
        if self._after[method]:
            raise self._after[method].pop(0)


class FakeCatalog(Scripted):
    def __init__(self, *products: ProductSnapshot) -> None:
        super().__init__()
        self.products = {product.product_id: product for product in products}

    async def product(self, product_id: str) -> ProductSnapshot:
        await self._enter("product")
        found = self.products.get(product_id)
        if found is None:
            raise UnknownProduct(product_id)
        self._leave("product")
        return found


@dataclass
class FakeReservation:
    lines: dict[str, int]
    status: str = "RESERVED"


class FakeInventory(Scripted):
    def __init__(self, available: dict[str, int]) -> None:
        super().__init__()
        self.available = dict(available)
        self.reservations: dict[str, FakeReservation] = {}
        self.ttls: list[int] = []

    async def reserve(
        self, reservation_id: str, lines: Sequence[StockLine], *, ttl_seconds: int
    ) -> None:
        await self._enter("reserve")
        self.ttls.append(ttl_seconds)
        existing = self.reservations.get(reservation_id)
        if existing is not None:
            if existing.status not in {"RESERVED", "COMMITTED"}:
                raise CheckoutRefused(f"stock reservation {existing.status.lower()}")
        else:
            short = [
                f"{line.sku} ({self.available.get(line.sku, 0)} available)"
                for line in lines
                if self.available.get(line.sku, 0) < line.quantity
            ]
            if short:
                raise OutOfStock(", ".join(short))
            for line in lines:
                self.available[line.sku] -= line.quantity
            self.reservations[reservation_id] = FakeReservation(
                {line.sku: line.quantity for line in lines}
            )
        self._leave("reserve")

    async def commit(self, reservation_id: str) -> None:
        await self._enter("commit")
        reservation = self.reservations.get(reservation_id)
        if reservation is None or reservation.status not in {"RESERVED", "COMMITTED"}:
            raise CheckoutRefused("stock reservation lapsed")
        reservation.status = "COMMITTED"
        self._leave("commit")

    async def release(self, reservation_id: str) -> None:
        await self._enter("release")
        reservation = self.reservations.get(reservation_id)
        # A committed reservation is left as it is, as the real client answers it.
        if reservation is not None and reservation.status == "RESERVED":
            reservation.status = "RELEASED"
            for sku, quantity in reservation.lines.items():
                self.available[sku] += quantity
        self._leave("release")

    async def return_stock(self, reservation_id: str) -> None:
        await self._enter("return")
        reservation = self.reservations.get(reservation_id)
        # Only committed stock comes back, and only once, as the real inventory answers it.
        if reservation is not None and reservation.status == "COMMITTED":
            reservation.status = "RETURNED"
            for sku, quantity in reservation.lines.items():
                self.available[sku] += quantity
        self._leave("return")

    def expire(self, reservation_id: str) -> None:
        reservation = self.reservations[reservation_id]
        reservation.status = "EXPIRED"
        for sku, quantity in reservation.lines.items():
            self.available[sku] += quantity


@dataclass
class FakePayment:
    id: str
    order_id: str
    amount: Money
    status: str


class FakeBilling(Scripted):
    def __init__(self) -> None:
        super().__init__()
        self.payments: dict[str, FakePayment] = {}
        self.customers: dict[str, str] = {}
        """The customer each order's authorization named, by order id."""

    def payment_of(self, order_id: str) -> FakePayment | None:
        return next((p for p in self.payments.values() if p.order_id == order_id), None)

    async def authorize(
        self, order_id: str, amount: Money, card_token: str, *, customer_id: str
    ) -> str:
        await self._enter("authorize")
        self.customers[order_id] = customer_id
        # Billing keys authorizations by order: a repeat answers the payment made first.
        payment = self.payment_of(order_id)
        if payment is None:
            status = "DECLINED" if card_token == DECLINED_CARD else "AUTHORIZED"
            payment = FakePayment(f"pay-{len(self.payments) + 1}", order_id, amount, status)
            self.payments[payment.id] = payment
        if payment.status == "DECLINED":
            raise PaymentDeclined("insufficient funds")
        self._leave("authorize")
        return payment.id

    async def held_payment(self, order_id: str) -> str | None:
        await self._enter("held_payment")
        payment = self.payment_of(order_id)
        self._leave("held_payment")
        return payment.id if payment and payment.status in {"AUTHORIZED", "CAPTURED"} else None

    async def capture(self, payment_id: str) -> None:
        await self._enter("capture")
        self._move(payment_id, "AUTHORIZED", "CAPTURED", refuse=True)
        self._leave("capture")

    async def void(self, payment_id: str) -> None:
        await self._enter("void")
        self._move(payment_id, "AUTHORIZED", "VOIDED", refuse=False)
        self._leave("void")

    async def refund(self, payment_id: str) -> None:
        await self._enter("refund")
        self._move(payment_id, "CAPTURED", "REFUNDED", refuse=False)
        self._leave("refund")

    def _move(self, payment_id: str, source: str, target: str, *, refuse: bool) -> None:
        """Capture refuses a payment in another state; void and refund leave it as it is."""
        payment = self.payments[payment_id]
        if payment.status == target:
            return
        if payment.status != source:
            if refuse:
                raise CheckoutRefused(
                    f"payment not captured: payment {payment_id} is {payment.status}"
                )
            return
        payment.status = target


@pytest.fixture
def catalog() -> FakeCatalog:
    return FakeCatalog(SAFFRON, TEA)


@pytest.fixture
def inventory() -> FakeInventory:
    return FakeInventory({SAFFRON.sku: 10, TEA.sku: 5})


@pytest.fixture
def billing() -> FakeBilling:
    return FakeBilling()
