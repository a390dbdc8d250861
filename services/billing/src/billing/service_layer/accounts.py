"""Handlers of the ledger's commands: load the account, let it decide, append what it recorded.

Two entries racing for one account both read the same version; the store lets only one
append, and the other is decided again on the newer balance (so a debit that no longer
fits is refused, never forced through). An Idempotency-Key names the entry it made: a
retry finds it and answers it again instead of writing a second one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from billing.domain.errors import AccountBusy, IdempotencyKeyReused
from billing.domain.events import AccountCredited, AccountDebited
from chassis.eventstore import ConcurrencyConflict, retry_on_conflict

if TYPE_CHECKING:
    from collections.abc import Callable

    from billing.domain.account import Account
    from billing.domain.commands import CreditAccount, DebitAccount
    from billing.domain.events import AccountEvent
    from billing.service_layer.ports import UnitOfWork

# Entry ids are derived from (account, Idempotency-Key): the same request finds its entry.
_ENTRY_IDS: Final = uuid.UUID("6a1f3c3e-5b7d-4f8e-9c61-2d0b8e4a7f15")


@dataclass(frozen=True, slots=True)
class EntryOutcome:
    """The entry a request wrote, or, for a replay, the one its Idempotency-Key wrote before."""

    entry: AccountEvent
    replayed: bool


def entry_id_for(account_id: str, idempotency_key: str) -> str:
    """The id of the entry that a request with this key makes on this account."""
    return uuid.uuid5(_ENTRY_IDS, f"{account_id}\n{idempotency_key}").hex


async def credit_account(command: CreditAccount, uow: UnitOfWork, *, attempts: int) -> EntryOutcome:
    """Put money on the account, once per Idempotency-Key."""

    def credit(account: Account, entry_id: str, now: datetime) -> AccountEvent:
        return account.credit(
            entry_id=entry_id,
            amount=command.amount,
            reason=command.reason,
            reference=command.reference,
            at=now,
        )

    return await _enter(command, AccountCredited, credit, uow, attempts)


async def debit_account(command: DebitAccount, uow: UnitOfWork, *, attempts: int) -> EntryOutcome:
    """Draw money from the account if it holds enough, once per Idempotency-Key.

    Raises InsufficientFunds, also when a concurrent debit took what this one needed.
    """

    def debit(account: Account, entry_id: str, now: datetime) -> AccountEvent:
        return account.debit(
            entry_id=entry_id,
            amount=command.amount,
            reason=command.reason,
            reference=command.reference,
            at=now,
        )

    return await _enter(command, AccountDebited, debit, uow, attempts)


async def _enter(
    command: CreditAccount | DebitAccount,
    kind: type[AccountEvent],
    write: Callable[[Account, str, datetime], AccountEvent],
    uow: UnitOfWork,
    attempts: int,
) -> EntryOutcome:
    entry_id = entry_id_for(command.account_id, command.idempotency_key)

    async def attempt() -> EntryOutcome:
        async with uow:
            # The account first, the key's entry second: an entry committed before the look
            # is found, one committed after the load makes this append a conflict; read the
            # other way round, a retry could slip between the two and write a second entry.
            account = await uow.accounts.get(command.account_id)
            earlier = await uow.accounts.entry(entry_id)
            if earlier is not None:
                if not _same_request(earlier, kind, command):
                    raise IdempotencyKeyReused(command.idempotency_key)
                return EntryOutcome(earlier, replayed=True)
            entry = write(account, entry_id, datetime.now(UTC))
            await uow.accounts.save(account)
            await uow.commit()
        return EntryOutcome(entry, replayed=False)

    try:
        return await retry_on_conflict(attempt, attempts=attempts)
    except ConcurrencyConflict:
        raise AccountBusy(command.account_id) from None


def _same_request(
    entry: AccountEvent, kind: type[AccountEvent], command: CreditAccount | DebitAccount
) -> bool:
    return (
        isinstance(entry, kind)
        and entry.amount == command.amount
        and entry.reason == command.reason
        and entry.reference == command.reference
    )
