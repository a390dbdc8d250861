"""Repositories over the orders' storage, implementing the service layer's ports.

Each order is the event stream ``order-<id>`` in the chassis's event store, rebuilt from its
newest snapshot and the events after it; the ``orders`` table indexes the streams for the
listings, and is written in the same transaction as every append.
"""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING, Final

from sqlalchemy import and_, delete, false, func, insert, or_, select, update

from chassis.eventstore import AggregateStore, ConcurrencyConflict, EventStore
from chassis.idempotency import IdempotencyKeys
from orders.adapters.event_codec import OrderEvents, OrderSnapshots
from orders.adapters.orm import idempotency_keys, order_card_tokens, orders
from orders.adapters.publishing import publish
from orders.domain.errors import IdempotencyKeyTaken, StaleOrder
from orders.domain.model import Order
from orders.service_layer.ports import IdempotencyRecord, ListPosition

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from chassis.messaging.outbox import Outbox
    from orders.domain.events import Event

CATEGORY: Final = "order"


class EventSourcedOrderRepository:
    """Orders as streams, with optimistic concurrency on each stream's version.

    Of two writers who loaded one version (the saga and a cancelling customer, say), the
    second's append raises StaleOrder and nothing of its transaction is stored; the caller
    loads the newer version and decides again. A lease (claiming an order for a while) was
    not chosen: a crashed holder would delay the saga until the lease ran out, while a step
    repeated by a second writer is harmless by design.
    """

    def __init__(self, session: AsyncSession, outbox: Outbox, *, snapshot_every: int) -> None:
        self._session = session
        self._outbox = outbox
        self._streams: AggregateStore[Order, Event] = AggregateStore(
            EventStore(session),
            category=CATEGORY,
            create=Order,
            codec=OrderEvents(),
            snapshots=OrderSnapshots(),
            snapshot_every=snapshot_every,
        )

    async def get(self, order_id: str) -> Order | None:
        order = await self._streams.get(order_id)
        if order.version == 0:
            return None
        order.card_token = await self._card_token(order_id)
        return order

    async def replay(self, order_id: str) -> Order:
        """The order folded from all its events, snapshots ignored (to check them)."""
        return await self._streams.replay(order_id)

    async def add(self, order: Order) -> None:
        await self._session.execute(
            insert(orders).values(id=order.id, created_at=order.created_at, **_index(order))
        )
        await self._session.execute(
            insert(order_card_tokens).values(order_id=order.id, card_token=order.card_token)
        )
        await self._append(order)

    async def save(self, order: Order) -> None:
        await self._append(order)
        await self._session.execute(
            update(orders).where(orders.c.id == order.id).values(**_index(order))
        )
        # Used up by the authorization, or never to be used: a settled order asks for none.
        if not order.card_token or order.settled:
            await self._session.execute(
                delete(order_card_tokens).where(order_card_tokens.c.order_id == order.id)
            )

    async def for_customer(
        self, customer_id: str, *, offset: int, limit: int, before: ListPosition | None = None
    ) -> tuple[list[Order], int]:
        listed = orders.c.customer_id == customer_id
        if before is not None:
            # Keyset: strictly after the position in (created_at, id) descending order.
            at = before.created_at.astimezone(UTC)
            listed = and_(
                listed,
                or_(
                    orders.c.created_at < at,
                    and_(orders.c.created_at == at, orders.c.id < before.order_id),
                ),
            )
        total = await self._session.scalar(select(func.count()).select_from(orders).where(listed))
        ids = await self._session.scalars(
            select(orders.c.id)
            .where(listed)
            .order_by(orders.c.created_at.desc(), orders.c.id.desc())
            .offset(offset)
            .limit(limit)
        )
        found = [await self._streams.get(order_id) for order_id in ids]
        return found, total or 0

    async def unsettled(self) -> list[str]:
        found = await self._session.scalars(
            select(orders.c.id).where(orders.c.settled == false()).order_by(orders.c.created_at)
        )
        return list(found)

    async def _append(self, order: Order) -> None:
        appended = list(order.pending_events)
        try:
            stored = await self._streams.save(order)
        except ConcurrencyConflict as conflict:
            raise StaleOrder(order.id) from conflict
        for event, recorded in zip(appended, stored, strict=True):
            publish(self._outbox, event, event_id=recorded.event_id)

    async def _card_token(self, order_id: str) -> str:
        token = await self._session.scalar(
            select(order_card_tokens.c.card_token).where(order_card_tokens.c.order_id == order_id)
        )
        return token or ""


def idempotency_keys_of(session: AsyncSession) -> IdempotencyKeys[IdempotencyRecord]:
    """The Idempotency-Keys, in the chassis's store: each names the order it placed."""
    return IdempotencyKeys(session, idempotency_keys, IdempotencyRecord, taken=IdempotencyKeyTaken)


def _index(order: Order) -> dict[str, object]:
    return {
        "customer_id": order.customer_id,
        "status": str(order.status),
        "settled": order.settled,
        "updated_at": order.updated_at,
        "version": order.version,
    }
