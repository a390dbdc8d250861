"""Accounts in the chassis's event store: each account is the stream ``account-<id>``.

The events stored are the ledger's published events (``contracts.events.ledger``), so what
the stream holds and what consumers read are the same JSON; appending them also puts them
in the outbox, keyed by account id, in the same transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, assert_never

from billing.domain.account import Account
from billing.domain.events import AccountCredited, AccountDebited, CreditReason, DebitReason
from chassis.eventstore import AggregateStore, EventStore, NewEvent, RecordedEvent, publish_on
from contracts import Money
from contracts.events import decode_data, ledger, timestamp

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqlalchemy.ext.asyncio import AsyncSession

    from billing.domain.events import AccountEvent
    from chassis.messaging.outbox import Outbox

CATEGORY: Final = "account"


class AccountEvents:
    """The event codec: a domain event as its ``contracts`` form's JSON, and back."""

    def encode(self, event: AccountEvent) -> NewEvent:
        published = published_form(event)
        return NewEvent(
            published.event_type,
            published.to_dict(),
            schema_version=published.schema_version,
            event_id=event.entry_id,
        )

    def decode(self, event: RecordedEvent) -> AccountEvent:
        # Through decode, so events stored under an older schema version are upcast.
        published = decode_data(event.event_type, event.schema_version, event.data)
        match published:
            case ledger.AccountCredited():
                return AccountCredited(
                    account_id=published.account_id,
                    entry_id=published.entry_id,
                    amount=published.amount,
                    reason=CreditReason(published.reason),
                    reference=published.reference,
                    balance=published.balance,
                    occurred_at=datetime.fromisoformat(published.occurred_at),
                )
            case ledger.AccountDebited():
                return AccountDebited(
                    account_id=published.account_id,
                    entry_id=published.entry_id,
                    amount=published.amount,
                    reason=DebitReason(published.reason),
                    reference=published.reference,
                    balance=published.balance,
                    occurred_at=datetime.fromisoformat(published.occurred_at),
                )
        raise ValueError(f"an account's stream holds a {event.event_type} event")


def published_form(event: AccountEvent) -> ledger.AccountCredited | ledger.AccountDebited:
    """``event`` as the ``ledger`` topic carries it."""
    match event:
        case AccountCredited():
            return ledger.AccountCredited(
                account_id=event.account_id,
                entry_id=event.entry_id,
                amount=event.amount,
                reason=str(event.reason),
                balance=event.balance,
                occurred_at=timestamp(event.occurred_at),
                reference=event.reference,
            )
        case AccountDebited():
            return ledger.AccountDebited(
                account_id=event.account_id,
                entry_id=event.entry_id,
                amount=event.amount,
                reason=str(event.reason),
                balance=event.balance,
                occurred_at=timestamp(event.occurred_at),
                reference=event.reference,
            )
        case _:
            assert_never(event)


class AccountSnapshots:
    """The snapshot codec. Bump ``format`` whenever Account's state changes shape."""

    format: Final = 1

    def state_of(self, account: Account) -> Mapping[str, Any]:
        if account.balance is None or account.opened_at is None or account.updated_at is None:
            raise ValueError("only an opened account has a state worth a snapshot")
        return {
            "balance": account.balance.to_dict(),
            "opened_at": timestamp(account.opened_at),
            "updated_at": timestamp(account.updated_at),
        }

    def restore(self, account_id: str, version: int, state: Mapping[str, Any]) -> Account:
        account = Account(account_id)
        account.version = version
        account.balance = Money(state["balance"]["amount"], state["balance"]["currency"])
        account.opened_at = datetime.fromisoformat(state["opened_at"])
        account.updated_at = datetime.fromisoformat(state["updated_at"])
        return account


def _account_of(event: RecordedEvent) -> str:
    account_id: str = event.data["account_id"]
    return account_id


class EventSourcedAccountRepository:
    """Implements the service layer's AccountRepository on the event store of one session."""

    def __init__(self, session: AsyncSession, outbox: Outbox, *, snapshot_every: int) -> None:
        self._events = EventStore(
            session, outbox=outbox, publish=publish_on(ledger.TOPIC, key=_account_of)
        )
        self._codec = AccountEvents()
        self._accounts: AggregateStore[Account, AccountEvent] = AggregateStore(
            self._events,
            category=CATEGORY,
            create=Account,
            codec=self._codec,
            snapshots=AccountSnapshots(),
            snapshot_every=snapshot_every,
        )

    async def get(self, account_id: str) -> Account:
        return await self._accounts.get(account_id)

    async def save(self, account: Account) -> None:
        await self._accounts.save(account)

    async def entry(self, entry_id: str) -> AccountEvent | None:
        recorded = await self._events.find(entry_id)
        return None if recorded is None else self._codec.decode(recorded)

    async def entries(self, account_id: str) -> list[AccountEvent]:
        stream = self._accounts.stream_id(account_id)
        return [self._codec.decode(event) for event in await self._events.load(stream)]

    async def replay(self, account_id: str) -> Account:
        """The account folded from every entry, snapshots ignored (to check them against)."""
        return await self._accounts.replay(account_id)
