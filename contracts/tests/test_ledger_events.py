"""Ledger events travel as JSON and decode by their type, like every other event."""

from __future__ import annotations

from contracts import Money
from contracts.events import decode, ledger


def test_a_debit_decodes_to_what_was_published_with_the_balance_left() -> None:
    debit = ledger.AccountDebited(
        account_id="customer-7",
        entry_id="entry-1",
        amount=Money(1490, "EUR"),
        reason="payment",
        balance=Money(510, "EUR"),
        occurred_at="2026-11-25T12:00:00+00:00",
        reference="order-1042",
    )

    decoded = decode("AccountDebited", 1, debit.to_json())

    assert decoded == debit


def test_a_credit_without_a_reference_reads_as_none() -> None:
    payload = (
        b'{"account_id":"customer-7","entry_id":"e","amount":{"amount":2000,"currency":"EUR"},'
        b'"reason":"top-up","balance":{"amount":2000,"currency":"EUR"},'
        b'"occurred_at":"2026-11-25T12:00:00+00:00"}'
    )

    decoded = decode("AccountCredited", 1, payload)

    assert isinstance(decoded, ledger.AccountCredited)
    assert (decoded.reference, decoded.balance) == (None, Money(2000, "EUR"))
