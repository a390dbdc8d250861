"""Repositories over billing's tables, implementing the service layer's ports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update

from billing.adapters.orm import idempotency_keys, payments
from billing.domain.errors import IdempotencyKeyInFlight
from billing.domain.model import Payment, PaymentStatus
from billing.service_layer.ports import IdempotencyRecord
from chassis.idempotency import IdempotencyKeys
from contracts import Money

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy import Row
    from sqlalchemy.ext.asyncio import AsyncSession


class SqlAlchemyPaymentRepository:
    """Payments in the ``payments`` table."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self.written: list[Payment] = []
        """The payments added or saved in this transaction, whose events it publishes."""

    async def get(self, payment_id: str) -> Payment | None:
        row = (
            await self._session.execute(select(payments).where(payments.c.id == payment_id))
        ).one_or_none()
        return None if row is None else _payment(row)

    async def add(self, payment: Payment) -> None:
        await self._session.execute(
            insert(payments).values(
                id=payment.id,
                order_id=payment.order_id,
                amount=payment.amount.amount,
                currency=str(payment.amount.currency),
                status=str(payment.status),
                provider=payment.provider,
                provider_reference=payment.provider_reference,
                decline_reason=payment.decline_reason,
                created_at=payment.created_at,
                customer_id=payment.customer_id,
            )
        )
        self._written(payment)

    async def save(self, payment: Payment) -> None:
        await self._session.execute(
            update(payments).where(payments.c.id == payment.id).values(status=str(payment.status))
        )
        self._written(payment)

    async def for_order(self, order_id: str) -> list[Payment]:
        rows = await self._session.execute(
            select(payments)
            .where(payments.c.order_id == order_id)
            .order_by(payments.c.created_at, payments.c.id)
        )
        return [_payment(row) for row in rows]

    def _written(self, payment: Payment) -> None:
        if all(written is not payment for written in self.written):
            self.written.append(payment)


class SqlAlchemyIdempotencyKeyRepository(IdempotencyKeys[IdempotencyRecord]):
    """Idempotency-Keys in the chassis's store, changed only from the version read; and the
    claims reconciliation must settle."""

    def __init__(self, session: AsyncSession) -> None:
        super().__init__(session, idempotency_keys, IdempotencyRecord, taken=IdempotencyKeyInFlight)
        self._session = session

    async def unanswered(self, before: datetime) -> list[IdempotencyRecord]:
        answered = select(payments.c.id).where(payments.c.id == idempotency_keys.c.payment_id)
        rows = await self._session.execute(
            select(idempotency_keys.c.key).where(
                idempotency_keys.c.asked_provider.is_not(None),
                idempotency_keys.c.settled.is_(False),
                idempotency_keys.c.locked_until.is_not(None),
                idempotency_keys.c.locked_until <= before,
                ~answered.exists(),
            )
        )
        found = [await self.get(key) for key in rows.scalars()]
        return [record for record in found if record is not None]


def _payment(row: Row[Any]) -> Payment:
    return Payment(
        id=row.id,
        order_id=row.order_id,
        amount=Money(row.amount, row.currency),
        status=PaymentStatus(row.status),
        provider=row.provider,
        provider_reference=row.provider_reference,
        decline_reason=row.decline_reason,
        created_at=row.created_at,
        customer_id=row.customer_id,
    )
