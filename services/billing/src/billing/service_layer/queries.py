"""Read-only questions about payments and accounts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from billing.domain.errors import AccountNotFound, PaymentNotFound

if TYPE_CHECKING:
    from billing.domain.account import Account
    from billing.domain.events import AccountEvent
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


async def get_account(uow: UnitOfWork, account_id: str) -> Account:
    """The account with this id; raises AccountNotFound if nothing was ever put on it."""
    async with uow:
        account = await uow.accounts.get(account_id)
    if not account.is_open:
        raise AccountNotFound(account_id)
    return account


async def entries_of_account(uow: UnitOfWork, account_id: str) -> list[AccountEvent]:
    """Every entry of the account, oldest first; raises AccountNotFound if it has none."""
    async with uow:
        entries = await uow.accounts.entries(account_id)
    if not entries:
        raise AccountNotFound(account_id)
    return entries
