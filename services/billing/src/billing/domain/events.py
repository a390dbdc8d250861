"""Facts about customer accounts, recorded on the Account aggregate.

An account's events are what it is stored as (the ledger is event sourced), and published
from the same transaction. A payment records the ``payments`` topic's events of
``contracts.events`` itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    from contracts import Money


class CreditReason(StrEnum):
    """Why money was put on an account."""

    TOP_UP = "top-up"
    REFUND = "refund"


class DebitReason(StrEnum):
    """Why money was drawn from an account."""

    PAYMENT = "payment"


@dataclass(frozen=True, slots=True)
class AccountCredited:
    """Money put on a customer's account; ``balance`` is the account's balance after it."""

    account_id: str
    entry_id: str
    amount: Money
    reason: CreditReason
    reference: str | None
    balance: Money
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class AccountDebited:
    """Money drawn from a customer's account; ``balance`` is what is left."""

    account_id: str
    entry_id: str
    amount: Money
    reason: DebitReason
    reference: str | None
    balance: Money
    occurred_at: datetime


AccountEvent = AccountCredited | AccountDebited
