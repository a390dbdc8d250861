"""The Account aggregate: a customer's store credit, kept as the entries that made it.

Its state is folded from its events (``apply``); its rules are checked before an event is
recorded: amounts are positive, in the account's one currency, and the balance never goes
below zero. The store appends what it recorded; a writer who read an older version loses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, assert_never

from billing.domain.errors import InsufficientFunds, InvalidEntry
from billing.domain.events import (
    AccountCredited,
    AccountDebited,
    AccountEvent,
    CreditReason,
    DebitReason,
)
from contracts import Money

if TYPE_CHECKING:
    from datetime import datetime

ACCOUNT_ID_MAX_LENGTH: Final = 100
REFERENCE_MAX_LENGTH: Final = 100


class Account:
    """A customer's account; it exists from its first credit, which fixes its currency.

    ``version`` counts the events applied, those recorded and not yet stored included;
    ``pending_events`` are those not yet stored.
    """

    def __init__(self, id: str) -> None:  # noqa: A002 - the aggregate's identity is called id everywhere
        self.id = checked_account_id(id)
        self.version = 0
        self.balance: Money | None = None  # None until the first credit: no currency yet
        self.opened_at: datetime | None = None
        self.updated_at: datetime | None = None
        self.pending_events: list[AccountEvent] = []

    @property
    def is_open(self) -> bool:
        return self.balance is not None

    def credit(
        self,
        *,
        entry_id: str,
        amount: Money,
        reason: CreditReason,
        at: datetime,
        reference: str | None = None,
    ) -> AccountCredited:
        """Put ``amount`` on the account (the first credit opens it, in its currency)."""
        _check_amount(amount, self.balance)
        balance = (self.balance or Money.zero(amount.currency)) + amount
        event = AccountCredited(
            account_id=self.id,
            entry_id=entry_id,
            amount=amount,
            reason=reason,
            reference=_checked_reference(reference),
            balance=balance,
            occurred_at=at,
        )
        self._record(event)
        return event

    def debit(
        self,
        *,
        entry_id: str,
        amount: Money,
        reason: DebitReason,
        at: datetime,
        reference: str | None = None,
    ) -> AccountDebited:
        """Draw ``amount`` from the account; raises InsufficientFunds if it holds less."""
        _check_amount(amount, self.balance)
        balance = self.balance or Money.zero(amount.currency)
        if balance < amount:
            raise InsufficientFunds(self.id, amount, balance)
        event = AccountDebited(
            account_id=self.id,
            entry_id=entry_id,
            amount=amount,
            reason=reason,
            reference=_checked_reference(reference),
            balance=balance - amount,
            occurred_at=at,
        )
        self._record(event)
        return event

    def apply(self, event: AccountEvent) -> None:
        """Fold one event into the state: the balance moves by its amount."""
        balance = self.balance or Money.zero(event.amount.currency)
        match event:
            case AccountCredited():
                self.balance = balance + event.amount
            case AccountDebited():
                self.balance = balance - event.amount
            case _:
                assert_never(event)
        self.opened_at = self.opened_at or event.occurred_at
        self.updated_at = event.occurred_at
        self.version += 1

    def _record(self, event: AccountEvent) -> None:
        self.apply(event)
        self.pending_events.append(event)

    def __repr__(self) -> str:
        return f"Account(id={self.id!r}, balance={self.balance}, version={self.version})"


def checked_account_id(account_id: str) -> str:
    if not account_id.strip() or len(account_id) > ACCOUNT_ID_MAX_LENGTH:
        raise InvalidEntry(
            "account_id",
            f"must be 1-{ACCOUNT_ID_MAX_LENGTH} characters, not blank; got {account_id!r}",
        )
    return account_id


def _check_amount(amount: Money, balance: Money | None) -> None:
    if amount.amount <= 0:
        raise InvalidEntry("amount", f"must be positive; got {amount.format()}")
    if balance is not None and amount.currency != balance.currency:
        raise InvalidEntry("amount", f"the account holds {balance.currency}, not {amount.currency}")


def _checked_reference(reference: str | None) -> str | None:
    if reference is not None and (not reference.strip() or len(reference) > REFERENCE_MAX_LENGTH):
        raise InvalidEntry(
            "reference",
            f"must be 1-{REFERENCE_MAX_LENGTH} characters, not blank; got {reference!r}",
        )
    return reference
