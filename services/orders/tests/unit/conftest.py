"""A hand-written fake of the storage ports and of the bus the saga's commands go through,
and the saga wired to the fakes."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Self

import pytest

from chassis.messaging.message import Delivery
from orders.domain.commands import PlaceOrder, RequestedItem, RunStep
from orders.domain.errors import IdempotencyKeyTaken, StaleOrder
from orders.domain.events import StepBegun
from orders.service_layer.checkout import Checkout, RetryPolicy
from orders.service_layer.handlers import place_order
from orders.service_layer.saga import CheckoutSaga, StepUnfinished, command_message, command_of
from services.orders.tests.conftest import GOOD_CARD

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from types import TracebackType

    from chassis.messaging.message import Message
    from orders.domain.model import Order
    from orders.service_layer.ports import IdempotencyRecord, ListPosition
    from services.orders.tests.conftest import FakeBilling, FakeCatalog, FakeInventory

RESERVATION_TTL = 600


class FakeStore:
    """What the fake database holds: committed orders and keys."""

    def __init__(self) -> None:
        self.orders: dict[str, Order] = {}
        self.keys: dict[str, IdempotencyRecord] = {}
        self.blind_key_lookups = 0
        """How many key lookups to answer None for, as if a concurrent request's key were
        not committed yet."""
        self.commands: list[Message] = []
        """The saga's commands committed and not yet acknowledged, oldest first."""
        self.handled: set[str] = set()
        """The ids of the commands the inbox recorded."""


class FakeOrderRepository:
    """Orders copied in and out; a save applies only onto the version it was loaded at."""

    def __init__(self, store: FakeStore, pending: dict[str, Order]) -> None:
        self._store = store
        self._pending = pending

    async def get(self, order_id: str) -> Order | None:
        order = self._store.orders.get(order_id)
        return None if order is None else copy.deepcopy(order)

    async def add(self, order: Order) -> None:
        self._pending[order.id] = copy.deepcopy(order)
        order.pending_events.clear()

    async def save(self, order: Order) -> None:
        stored = self._store.orders.get(order.id)
        if stored is None or stored.version != order.version - len(order.pending_events):
            raise StaleOrder(order.id)
        self._pending[order.id] = copy.deepcopy(order)
        order.pending_events.clear()

    async def for_customer(
        self, customer_id: str, *, offset: int, limit: int, before: ListPosition | None = None
    ) -> tuple[list[Order], int]:
        found = sorted(
            (o for o in self._store.orders.values() if o.customer_id == customer_id),
            key=lambda o: (o.created_at, o.id),
            reverse=True,
        )
        if before is not None:
            found = [
                o for o in found if (o.created_at, o.id) < (before.created_at, before.order_id)
            ]
        return copy.deepcopy(found[offset : offset + limit]), len(found)

    async def unsettled(self) -> list[str]:
        ordered = sorted(self._store.orders.values(), key=lambda o: o.created_at)
        return [o.id for o in ordered if not o.settled]


class FakeIdempotencyKeyRepository:
    def __init__(self, store: FakeStore, pending: dict[str, IdempotencyRecord]) -> None:
        self._store = store
        self._pending = pending

    async def get(self, key: str) -> IdempotencyRecord | None:
        if self._store.blind_key_lookups:
            self._store.blind_key_lookups -= 1
            return None
        return self._store.keys.get(key)

    async def add(self, record: IdempotencyRecord) -> None:
        if record.key in self._store.keys or record.key in self._pending:
            raise IdempotencyKeyTaken(record.key)
        self._pending[record.key] = record


class FakeInbox:
    def __init__(self, store: FakeStore, pending: set[str]) -> None:
        self._store = store
        self._pending = pending

    async def seen(self, delivery: Delivery) -> bool:
        return delivery.message.message_id in self._store.handled

    async def record(self, delivery: Delivery) -> None:
        self._pending.add(delivery.message.message_id)


class FakeUnitOfWork:
    """Each ``async with`` collects changes that only ``commit`` applies to the store."""

    orders: FakeOrderRepository
    idempotency_keys: FakeIdempotencyKeyRepository
    inbox: FakeInbox

    def __init__(self, store: FakeStore) -> None:
        self.store = store

    async def __aenter__(self) -> Self:
        self._orders: dict[str, Order] = {}
        self._keys: dict[str, IdempotencyRecord] = {}
        self._handled: set[str] = set()
        self.orders = FakeOrderRepository(self.store, self._orders)
        self.idempotency_keys = FakeIdempotencyKeyRepository(self.store, self._keys)
        self.inbox = FakeInbox(self.store, self._handled)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        del self._orders, self._keys, self._handled

    async def commit(self) -> None:
        for order_id, order in self._orders.items():
            stored = self.store.orders.get(order_id)
            expected = order.version - len(order.pending_events)
            if (0 if stored is None else stored.version) != expected:
                raise StaleOrder(order_id)
        if self._handled & self.store.handled:
            raise RuntimeError("the inbox already holds this message (primary key)")
        for order in self._orders.values():
            # What the event store's publication does: a step begun sends its command.
            self.store.commands.extend(
                command_message(RunStep(e.order_id, e.step), message_id=uuid.uuid4().hex)
                for e in order.pending_events
                if isinstance(e, StepBegun)
            )
            order.pending_events.clear()
        self.store.orders.update(self._orders)
        self.store.keys.update(self._keys)
        self.store.handled |= self._handled
        self._orders.clear()
        self._keys.clear()


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


class Clock:
    """The saga's clock, moved on by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(UTC))


@pytest.fixture
def saga(store: FakeStore, checkout: Checkout, clock: Clock) -> CheckoutSaga:
    return CheckoutSaga(lambda: FakeUnitOfWork(store), checkout, clock=clock)


def delivery_of(message: Message, attempt: int = 1) -> Delivery:
    return Delivery(message=message, group="orders", partition=0, attempt=attempt)


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
                await saga.handle(command_of(message), delivery_of(message))
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
