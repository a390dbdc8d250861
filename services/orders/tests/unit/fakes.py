"""Hand-written fakes of the storage ports and of the bus the saga's commands go through, for
the tests beside this file (imported, not fixtures)."""

from __future__ import annotations

import copy
import uuid
from typing import TYPE_CHECKING, Self

from chassis.messaging.message import Message
from orders.domain.commands import RunStep
from orders.domain.errors import IdempotencyKeyTaken, StaleOrder
from orders.domain.events import StepBegun

if TYPE_CHECKING:
    from datetime import datetime
    from types import TracebackType

    from orders.domain.model import Order
    from orders.service_layer.ports import IdempotencyRecord, ListPosition, Receipt


def command_message(command: RunStep, *, message_id: str | None = None) -> Message:
    """The command as the ``checkout`` topic carries it, as the outbox sends it."""
    return Message(
        topic=command.topic,
        key=command.key,
        event_type=command.event_type,
        schema_version=command.schema_version,
        payload=command.to_json(),
        message_id=message_id or uuid.uuid4().hex,
    )


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


class FakeHandledCommands:
    def __init__(self, store: FakeStore, pending: set[str]) -> None:
        self._store = store
        self._pending = pending

    async def seen(self, receipt: Receipt) -> bool:
        return receipt.command_id in self._store.handled

    async def record(self, receipt: Receipt) -> None:
        self._pending.add(receipt.command_id)


class FakeUnitOfWork:
    """Each ``async with`` collects changes that only ``commit`` applies to the store."""

    orders: FakeOrderRepository
    idempotency_keys: FakeIdempotencyKeyRepository
    handled_commands: FakeHandledCommands

    def __init__(self, store: FakeStore) -> None:
        self.store = store

    async def __aenter__(self) -> Self:
        self._orders: dict[str, Order] = {}
        self._keys: dict[str, IdempotencyRecord] = {}
        self._handled: set[str] = set()
        self.orders = FakeOrderRepository(self.store, self._orders)
        self.idempotency_keys = FakeIdempotencyKeyRepository(self.store, self._keys)
        self.handled_commands = FakeHandledCommands(self.store, self._handled)
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
            # What the repository's publishing does: a step begun sends its command.
            self.store.commands.extend(
                command_message(RunStep(e.order_id, e.step))
                for e in order.pending_events
                if isinstance(e, StepBegun)
            )
            order.pending_events.clear()
        self.store.orders.update(self._orders)
        self.store.keys.update(self._keys)
        self.store.handled |= self._handled
        self._orders.clear()
        self._keys.clear()


class Clock:
    """The saga's clock, moved on by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now
