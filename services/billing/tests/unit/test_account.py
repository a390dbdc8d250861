"""The Account aggregate guards the ledger's rules; its state is the fold of its events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from billing.domain.account import Account
from billing.domain.errors import InsufficientFunds, InvalidEntry
from billing.domain.events import AccountCredited, AccountDebited, CreditReason, DebitReason
from contracts import Money

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def eur(cents: int) -> Money:
    return Money(cents, "EUR")


def topped_up(cents: int, account_id: str = "customer-7") -> Account:
    account = Account(account_id)
    account.credit(entry_id="top-up", amount=eur(cents), reason=CreditReason.TOP_UP, at=NOW)
    return account


def test_the_first_credit_opens_the_account_in_its_currency() -> None:
    account = Account("customer-7")
    assert not account.is_open

    entry = account.credit(
        entry_id="e1", amount=eur(2000), reason=CreditReason.TOP_UP, at=NOW, reference="gift"
    )

    assert account.is_open
    assert (account.balance, account.version, account.opened_at) == (eur(2000), 1, NOW)
    assert entry == AccountCredited(
        account_id="customer-7",
        entry_id="e1",
        amount=eur(2000),
        reason=CreditReason.TOP_UP,
        reference="gift",
        balance=eur(2000),
        occurred_at=NOW,
    )
    assert account.pending_events == [entry]


def test_a_debit_draws_from_the_balance_and_says_what_is_left() -> None:
    account = topped_up(2000)

    entry = account.debit(
        entry_id="e2",
        amount=eur(1490),
        reason=DebitReason.PAYMENT,
        at=NOW + timedelta(minutes=1),
        reference="order-1042",
    )

    assert isinstance(entry, AccountDebited)
    assert entry.balance == eur(510) == account.balance
    assert (account.version, account.updated_at) == (2, NOW + timedelta(minutes=1))


def test_the_whole_balance_can_be_drawn_but_not_a_cent_more() -> None:
    account = topped_up(1000)

    with pytest.raises(InsufficientFunds) as refused:
        account.debit(entry_id="e2", amount=eur(1001), reason=DebitReason.PAYMENT, at=NOW)
    account.debit(entry_id="e3", amount=eur(1000), reason=DebitReason.PAYMENT, at=NOW)

    assert (refused.value.requested, refused.value.balance) == (eur(1001), eur(1000))
    assert account.balance == eur(0)
    assert [type(e) for e in account.pending_events] == [AccountCredited, AccountDebited]


def test_an_account_never_credited_has_nothing_to_draw() -> None:
    account = Account("customer-7")

    with pytest.raises(InsufficientFunds) as refused:
        account.debit(entry_id="e1", amount=eur(1), reason=DebitReason.PAYMENT, at=NOW)

    assert refused.value.balance == eur(0)
    assert (account.version, account.pending_events) == (0, [])


@pytest.mark.parametrize("cents", [0, -500])
def test_an_entry_moves_a_positive_amount(cents: int) -> None:
    account = topped_up(1000)

    with pytest.raises(InvalidEntry, match="positive"):
        account.credit(entry_id="e2", amount=eur(cents), reason=CreditReason.REFUND, at=NOW)
    with pytest.raises(InvalidEntry, match="positive"):
        account.debit(entry_id="e3", amount=eur(cents), reason=DebitReason.PAYMENT, at=NOW)
    assert account.version == 1


def test_an_account_holds_one_currency() -> None:
    account = topped_up(1000)

    with pytest.raises(InvalidEntry, match="holds EUR"):
        account.credit(entry_id="e2", amount=Money(1000, "USD"), reason=CreditReason.TOP_UP, at=NOW)
    assert account.balance == eur(1000)


@pytest.mark.parametrize("account_id", ["", "   ", "x" * 101])
def test_an_account_id_is_one_to_a_hundred_characters(account_id: str) -> None:
    with pytest.raises(InvalidEntry, match="account_id"):
        Account(account_id)


def test_folding_the_recorded_events_rebuilds_the_same_account() -> None:
    account = topped_up(5000)
    account.debit(entry_id="e2", amount=eur(1200), reason=DebitReason.PAYMENT, at=NOW)
    account.credit(entry_id="e3", amount=eur(300), reason=CreditReason.REFUND, at=NOW)

    rebuilt = Account("customer-7")
    for event in account.pending_events:
        rebuilt.apply(event)

    assert (rebuilt.balance, rebuilt.version, rebuilt.opened_at, rebuilt.updated_at) == (
        eur(4100),
        3,
        NOW,
        NOW,
    )
    assert rebuilt.pending_events == []
