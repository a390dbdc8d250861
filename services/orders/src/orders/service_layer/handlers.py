"""One handler per command: load, act, save."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from orders.domain.errors import (
    IdempotencyKeyReused,
    IdempotencyKeyTaken,
    OrderNotFound,
    StaleOrder,
)
from orders.domain.model import Order
from orders.service_layer.ports import IdempotencyRecord

if TYPE_CHECKING:
    from orders.domain.commands import CancelOrder, PlaceOrder
    from orders.service_layer.ports import UnitOfWork

MAX_CANCEL_ATTEMPTS: Final = 5


@dataclass(frozen=True, slots=True)
class Placement:
    """The order a PlaceOrder command answers with; ``replayed`` if its key had placed it."""

    order: Order
    replayed: bool


async def place_order(command: PlaceOrder, uow: UnitOfWork) -> Placement:
    """Place a PENDING order once per Idempotency-Key; the same request again answers it.

    The saga's first command goes out with the order, in its transaction.

    The order and its key are stored in one transaction, and the key is unique, so two
    concurrent requests with one key cannot place two orders.
    """
    try:
        return await _place_once(command, uow)
    except IdempotencyKeyTaken:
        # A concurrent request with the same key committed first: answer as a replay of it.
        return await _place_once(command, uow)


async def cancel_order(command: CancelOrder, uow: UnitOfWork) -> Order:
    """Cancel a pending or confirmed order of the customer's; the saga then undoes it (the
    first compensation's command goes out now unless a step's command is still out)."""
    for _ in range(MAX_CANCEL_ATTEMPTS):
        async with uow:
            order = await uow.orders.get(command.order_id)
            if order is None or order.customer_id != command.customer_id:
                raise OrderNotFound(command.order_id)
            now = datetime.now(UTC)
            order.cancel(now)
            order.advance(now)
            try:
                await uow.orders.save(order)
            except StaleOrder:
                # The checkout moved the order on meanwhile: decide again on its new state.
                continue
            await uow.commit()
            return order
    raise StaleOrder(command.order_id)


async def _place_once(command: PlaceOrder, uow: UnitOfWork) -> Placement:
    async with uow:
        record = await uow.idempotency_keys.get(command.idempotency_key)
        if record is not None:
            if record.fingerprint != command.request_fingerprint:
                raise IdempotencyKeyReused(command.idempotency_key)
            placed = await uow.orders.get(record.order_id)
            if placed is None:
                raise OrderNotFound(record.order_id)
            if placed.customer_id != command.customer_id:
                # Keys are global: another customer's key must not answer with their order.
                raise IdempotencyKeyReused(command.idempotency_key)
            return Placement(placed, replayed=True)
        now = datetime.now(UTC)
        order = Order.place(
            customer_id=command.customer_id,
            items=command.items,
            card_token=command.card_token,
            at=now,
            delivery=command.delivery,
            delivery_price=command.delivery_price,
        )
        order.advance(now)
        await uow.orders.add(order)
        await uow.idempotency_keys.add(
            IdempotencyRecord(
                key=command.idempotency_key,
                fingerprint=command.request_fingerprint,
                order_id=order.id,
                created_at=now,
            )
        )
        await uow.commit()
    return Placement(order, replayed=False)
