"""Read-only questions about payments."""

from __future__ import annotations

from typing import TYPE_CHECKING

from billing.domain.errors import PaymentNotFound

if TYPE_CHECKING:
    from billing.domain.model import Payment
    from billing.service_layer.ports import UnitOfWork


async def get_payment(uow: UnitOfWork, payment_id: str) -> Payment:
    """The payment with this id; raises PaymentNotFound."""
    async with uow:
        payment = await uow.payments.get(payment_id)
    if payment is None:
        raise PaymentNotFound(payment_id)
    return payment


async def payments_of_order(uow: UnitOfWork, order_id: str) -> list[Payment]:
    """Every payment made for an order, oldest first (declined ones included)."""
    async with uow:
        return await uow.payments.for_order(order_id)
