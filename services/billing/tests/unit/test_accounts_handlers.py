"""The ledger's handlers: a race lost is decided again on the newer balance, a bounded number
of times; an Idempotency-Key answers its entry again instead of writing a second one."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from billing.domain.account import Account
from billing.domain.commands import CreditAccount, DebitAccount
from billing.domain.errors import AccountBusy, IdempotencyKeyReused, InsufficientFunds
from billing.domain.events import AccountCredited, AccountDebited, CreditReason, DebitReason
from billing.service_layer.accounts import credit_account, debit_account
from contracts import Money

from .fakes import FakeUnitOfWork

ATTEMPTS = 3
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def eur(cents: int) -> Money:
    return Money(cents, "EUR")


def pay(cents: int, key: str = "pay-1") -> DebitAccount:
    return DebitAccount(
        account_id="customer-7",
        amount=eur(cents),
        reason=DebitReason.PAYMENT,
        idempotency_key=key,
        reference="order-1042",
    )


@pytest.fixture
async def funded(uow: FakeUnitOfWork) -> FakeUnitOfWork:
    """customer-7's account holds 100.00 EUR."""
    top_up = CreditAccount("customer-7", eur(10000), CreditReason.TOP_UP, idempotency_key="top-up")
    await credit_account(top_up, uow, attempts=ATTEMPTS)
    return uow


def rival_debit(uow: FakeUnitOfWork, cents: int, *, times: int | None = 1) -> list[int]:
    """Make another writer debit ``cents`` right after each of the next ``times`` loads
    (every load if None); the list counts the loads."""
    loads: list[int] = []

    def interloper() -> None:
        loads.append(1)
        if times is not None and len(loads) > times:
            return
        account = Account("customer-7")
        for event in uow.committed_accounts["customer-7"]:
            account.apply(event)
        account.debit(
            entry_id=f"rival-{len(loads)}", amount=eur(cents), reason=DebitReason.PAYMENT, at=NOW
        )
        uow.committed_accounts["customer-7"].extend(account.pending_events)

    uow.interloper = interloper
    return loads


async def test_a_debit_that_lost_the_race_but_still_fits_is_written_on_the_newer_balance(
    funded: FakeUnitOfWork,
) -> None:
    loads = rival_debit(funded, 2000)

    outcome = await debit_account(pay(5000), funded, attempts=ATTEMPTS)

    assert len(loads) == 2  # decided once, lost, decided again
    assert outcome.entry.balance == eur(3000)
    assert [e.amount for e in funded.committed_accounts["customer-7"]] == [
        eur(10000),
        eur(2000),
        eur(5000),
    ]


async def test_a_debit_that_lost_the_race_and_no_longer_fits_is_refused(
    funded: FakeUnitOfWork,
) -> None:
    rival_debit(funded, 8000)

    with pytest.raises(InsufficientFunds) as refused:
        await debit_account(pay(5000), funded, attempts=ATTEMPTS)

    assert refused.value.balance == eur(2000)
    assert [type(e) for e in funded.committed_accounts["customer-7"]] == [
        AccountCredited,
        AccountDebited,
    ]


async def test_an_account_always_written_first_gives_up_as_busy_and_writes_nothing(
    funded: FakeUnitOfWork,
) -> None:
    loads = rival_debit(funded, 100, times=None)

    with pytest.raises(AccountBusy):
        await debit_account(pay(5000), funded, attempts=ATTEMPTS)

    assert len(loads) == ATTEMPTS
    assert [e.entry_id for e in funded.committed_accounts["customer-7"]][1:] == [
        "rival-1",
        "rival-2",
        "rival-3",
    ]


async def test_a_repeated_request_answers_its_entry_and_moves_no_more_money(
    funded: FakeUnitOfWork,
) -> None:
    first = await debit_account(pay(1490), funded, attempts=ATTEMPTS)
    again = await debit_account(pay(1490), funded, attempts=ATTEMPTS)

    assert (first.replayed, again.replayed) == (False, True)
    assert again.entry == first.entry
    assert len(funded.committed_accounts["customer-7"]) == 2


async def test_a_key_sent_again_with_another_amount_or_kind_is_refused(
    funded: FakeUnitOfWork,
) -> None:
    await debit_account(pay(1490), funded, attempts=ATTEMPTS)

    with pytest.raises(IdempotencyKeyReused):
        await debit_account(pay(1491), funded, attempts=ATTEMPTS)
    with pytest.raises(IdempotencyKeyReused):
        await credit_account(
            CreditAccount("customer-7", eur(1490), CreditReason.REFUND, idempotency_key="pay-1"),
            funded,
            attempts=ATTEMPTS,
        )
    assert len(funded.committed_accounts["customer-7"]) == 2


async def test_one_key_on_two_accounts_makes_two_entries(funded: FakeUnitOfWork) -> None:
    gift = CreditAccount("customer-8", eur(500), CreditReason.TOP_UP, idempotency_key="top-up")

    outcome = await credit_account(gift, funded, attempts=ATTEMPTS)

    assert not outcome.replayed
    assert outcome.entry.balance == eur(500)
