"""Fixtures of the unit tests: the fakes of the ports (``fakes.py``), and the saga wired to
them."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from chassis.messaging.message import Delivery
from orders.domain.commands import PlaceOrder, RequestedItem
from orders.entrypoints.saga_consumer import command_of, receipt_of
from orders.service_layer.checkout import Checkout, RetryPolicy
from orders.service_layer.handlers import place_order
from orders.service_layer.saga_handler import CheckoutSaga, StepUnfinished
from services.orders.tests.conftest import GOOD_CARD

from .fakes import Clock, FakeStore, FakeUnitOfWork

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from chassis.messaging.message import Message
    from orders.domain.model import Order
    from orders.service_layer.ports import Receipt
    from services.orders.tests.conftest import FakeBilling, FakeCatalog, FakeInventory

RESERVATION_TTL = 600


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def uow(store: FakeStore) -> FakeUnitOfWork:
    return FakeUnitOfWork(store)


@pytest.fixture
def checkout(catalog: FakeCatalog, inventory: FakeInventory, billing: FakeBilling) -> Checkout:
    """The checkout on the fakes, retrying three times without waiting."""
    return Checkout(
        catalog=catalog,
        inventory=inventory,
        billing=billing,
        retry=RetryPolicy(attempts=3, base_delay=0, max_delay=0),
        reservation_ttl_seconds=RESERVATION_TTL,
    )


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(UTC))


@pytest.fixture
def saga(store: FakeStore, checkout: Checkout, clock: Clock) -> CheckoutSaga:
    return CheckoutSaga(lambda: FakeUnitOfWork(store), checkout, clock=clock)


def receipt_for(message: Message) -> Receipt:
    """The receipt of ``message`` delivered to orders' consumer group."""
    return receipt_of(Delivery(message=message, group="orders", partition=0, attempt=1))


@pytest.fixture
def drive(store: FakeStore, saga: CheckoutSaga) -> Callable[[str], Awaitable[Order]]:
    """The bus, as far as the order's commands go: deliver each, in order, and acknowledge
    it once handled; a command whose step is unfinished stays, for the next ``drive``
    (the bus's redelivery). An exception the saga does not expect (a crash) propagates and
    leaves the command unacknowledged too. Answers the order as stored then."""

    async def drive_it(order_id: str) -> Order:
        while True:
            queued = [m for m in store.commands if m.key == order_id]
            if not queued:
                break
            message = queued[0]
            try:
                await saga.handle(command_of(message), receipt_for(message))
            except StepUnfinished:
                break
            store.commands.remove(message)
        return copy.deepcopy(store.orders[order_id])

    return drive_it


def place_command(
    *items: tuple[str, int], card_token: str = GOOD_CARD, key: str = "key-1", customer: str = "c-1"
) -> PlaceOrder:
    return PlaceOrder(
        customer_id=customer,
        items=tuple(RequestedItem(product_id, quantity) for product_id, quantity in items),
        card_token=card_token,
        idempotency_key=key,
        request_fingerprint=f"fingerprint of {items} {card_token} {customer}",
    )


@pytest.fixture
def place(store: FakeStore) -> Callable[..., Awaitable[str]]:
    """Place an order in the fake store and answer its id."""

    async def place_it(
        *items: tuple[str, int], card_token: str = GOOD_CARD, key: str | None = None
    ) -> str:
        command = place_command(
            *items, card_token=card_token, key=key or f"key-{len(store.keys) + 1}"
        )
        return (await place_order(command, FakeUnitOfWork(store))).order.id

    return place_it
