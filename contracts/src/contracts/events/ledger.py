"""Events of topic ``ledger``, keyed by account id: entries on customers' store-credit accounts.

Billing's accounts are event sourced: these are the very events each account's stream holds,
published from the transaction that appends them. ``balance`` is the account's balance after
the entry, so a consumer needs no earlier event to show it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final

from contracts.events.schema import Event, register
from contracts.money import Money

TOPIC: Final = "ledger"


@dataclass(frozen=True, slots=True)
class AccountCredited(Event):
    """Money was put on the account: ``reason`` is ``top-up`` or ``refund``."""

    event_type: ClassVar[str] = "AccountCredited"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[str] = TOPIC
    key_field: ClassVar[str] = "account_id"

    account_id: str
    entry_id: str
    amount: Money
    reason: str
    balance: Money
    occurred_at: str
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class AccountDebited(Event):
    """Money was drawn from the account: ``reason`` is ``payment``."""

    event_type: ClassVar[str] = "AccountDebited"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[str] = TOPIC
    key_field: ClassVar[str] = "account_id"

    account_id: str
    entry_id: str
    amount: Money
    reason: str
    balance: Money
    occurred_at: str
    reference: str | None = None


register(AccountCredited, AccountDebited)
