"""Repositories over the orders' tables, implementing the service layer's ports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import CursorResult, and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from contracts import Money
from orders.adapters.orm import checkout_steps, idempotency_keys, order_lines, orders
from orders.domain.errors import IdempotencyKeyTaken, StaleOrder
from orders.domain.model import Order, OrderLine, OrderStatus, Outcome, StepRecord
from orders.domain.saga import Step
from orders.service_layer.ports import IdempotencyRecord, ListPosition

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy import Row
    from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class _Stored:
    """What an order looked like in storage when this repository last read or wrote it."""

    version: int
    lines: tuple[OrderLine, ...]
    step_count: int


class SqlAlchemyOrderRepository:
    """Orders in ``orders``, ``order_lines`` and ``checkout_steps``.

    Optimistic concurrency: a save is an UPDATE conditional on the version the order had
    when loaded, so of two writers (two replicas resuming one order, or the checkout and a
    cancelling customer) the second fails with StaleOrder and decides again on the newer
    state. A lease (claiming an order for a while) was not chosen: it would still need this
    check for the customer's cancel, and a crashed holder would delay the resumption until
    the lease ran out, while a step repeated by a second driver is harmless by design.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._stored: dict[str, _Stored] = {}
        self.written: list[Order] = []
        """The orders added or saved in this transaction, whose events it publishes."""

    async def get(self, order_id: str) -> Order | None:
        rows = (await self._session.execute(select(orders).where(orders.c.id == order_id))).all()
        found = await self._load(rows)
        return found[0] if found else None

    async def add(self, order: Order) -> None:
        await self._session.execute(
            insert(orders).values(
                id=order.id, version=order.version, created_at=order.created_at, **_fields(order)
            )
        )
        await self._session.execute(
            insert(order_lines),
            [_line_values(order.id, position, line) for position, line in enumerate(order.lines)],
        )
        await self._insert_steps(order, start=0)
        self._track(order)
        self._written(order)

    async def save(self, order: Order) -> None:
        stored = self._stored[order.id]
        result = await self._session.execute(
            update(orders)
            .where(orders.c.id == order.id, orders.c.version == stored.version)
            .values(version=stored.version + 1, **_fields(order))
        )
        if not isinstance(result, CursorResult) or result.rowcount != 1:
            raise StaleOrder(order.id)
        order.version = stored.version + 1
        for position, (before, after) in enumerate(zip(stored.lines, order.lines, strict=True)):
            if before != after:
                await self._session.execute(
                    update(order_lines)
                    .where(order_lines.c.order_id == order.id, order_lines.c.position == position)
                    .values(_line_values(order.id, position, after))
                )
        await self._insert_steps(order, start=stored.step_count)
        self._track(order)
        self._written(order)

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
        rows = (
            await self._session.execute(
                select(orders)
                .where(listed)
                .order_by(orders.c.created_at.desc(), orders.c.id.desc())
                .offset(offset)
                .limit(limit)
            )
        ).all()
        return await self._load(rows), total or 0

    async def _load(self, rows: Sequence[Row[Any]]) -> list[Order]:
        ids = [row.id for row in rows]
        if not ids:
            return []
        lines: dict[str, list[OrderLine]] = {order_id: [] for order_id in ids}
        for line in await self._session.execute(
            select(order_lines)
            .where(order_lines.c.order_id.in_(ids))
            .order_by(order_lines.c.order_id, order_lines.c.position)
        ):
            lines[line.order_id].append(_line_from(line))
        steps: dict[str, list[StepRecord]] = {order_id: [] for order_id in ids}
        for step in await self._session.execute(
            select(checkout_steps)
            .where(checkout_steps.c.order_id.in_(ids))
            .order_by(checkout_steps.c.order_id, checkout_steps.c.position)
        ):
            steps[step.order_id].append(
                StepRecord(
                    step=Step(step.step),
                    outcome=Outcome(step.outcome),
                    at=_utc(step.at),
                    detail=step.detail,
                )
            )
        return [self._track(_order_from(row, lines[row.id], steps[row.id])) for row in rows]

    async def _insert_steps(self, order: Order, *, start: int) -> None:
        new = order.steps[start:]
        if new:
            await self._session.execute(
                insert(checkout_steps),
                [
                    {
                        "order_id": order.id,
                        "position": position,
                        "step": str(record.step),
                        "outcome": str(record.outcome),
                        "at": record.at,
                        "detail": record.detail,
                    }
                    for position, record in enumerate(new, start=start)
                ],
            )

    def _written(self, order: Order) -> None:
        if all(written is not order for written in self.written):
            self.written.append(order)

    def _track(self, order: Order) -> Order:
        self._stored[order.id] = _Stored(
            version=order.version, lines=tuple(order.lines), step_count=len(order.steps)
        )
        return order


class SqlAlchemyIdempotencyKeyRepository:
    """Idempotency-Keys in ``idempotency_keys``, unique by key."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, key: str) -> IdempotencyRecord | None:
        row = (
            await self._session.execute(
                select(idempotency_keys).where(idempotency_keys.c.key == key)
            )
        ).one_or_none()
        if row is None:
            return None
        return IdempotencyRecord(
            key=row.key,
            request_fingerprint=row.request_fingerprint,
            order_id=row.order_id,
            created_at=_utc(row.created_at),
        )

    async def add(self, record: IdempotencyRecord) -> None:
        try:
            await self._session.execute(
                insert(idempotency_keys).values(
                    key=record.key,
                    request_fingerprint=record.request_fingerprint,
                    order_id=record.order_id,
                    created_at=record.created_at,
                )
            )
        except IntegrityError as error:
            # The key was absent when looked up: a concurrent request stored it since.
            raise IdempotencyKeyTaken(record.key) from error


def _fields(order: Order) -> dict[str, Any]:
    return {
        "customer_id": order.customer_id,
        "status": str(order.status),
        "card_token": order.card_token,
        "reason": order.reason,
        "last_error": order.last_error,
        "payment_id": order.payment_id,
        "step_in_progress": None if order.step_in_progress is None else str(order.step_in_progress),
        "step_deadline": order.step_deadline,
        "settled": order.settled,
        "updated_at": order.updated_at,
    }


def _line_values(order_id: str, position: int, line: OrderLine) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "position": position,
        "product_id": line.product_id,
        "quantity": line.quantity,
        "sku": line.sku,
        "name": line.name,
        "unit_price_amount": None if line.unit_price is None else line.unit_price.amount,
        "unit_price_currency": None if line.unit_price is None else str(line.unit_price.currency),
    }


def _line_from(row: Row[Any]) -> OrderLine:
    return OrderLine(
        product_id=row.product_id,
        quantity=row.quantity,
        sku=row.sku,
        name=row.name,
        unit_price=(
            None
            if row.unit_price_amount is None
            else Money(row.unit_price_amount, row.unit_price_currency)
        ),
    )


def _order_from(row: Row[Any], lines: list[OrderLine], steps: list[StepRecord]) -> Order:
    return Order(
        id=row.id,
        customer_id=row.customer_id,
        lines=lines,
        card_token=row.card_token,
        created_at=_utc(row.created_at),
        updated_at=_utc(row.updated_at),
        status=OrderStatus(row.status),
        reason=row.reason,
        last_error=row.last_error,
        payment_id=row.payment_id,
        step_in_progress=None if row.step_in_progress is None else Step(row.step_in_progress),
        step_deadline=None if row.step_deadline is None else _utc(row.step_deadline),
        steps=steps,
        version=row.version,
    )


def _utc(moment: datetime) -> datetime:
    # SQLite keeps no time zone: every moment is stored in UTC and read back as such.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
