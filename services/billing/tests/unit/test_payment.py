"""The Payment aggregate guards billing's rules: what may follow what, and only once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING
from unittest.mock import ANY

import pytest

from billing.domain.errors import InvalidPayment, PaymentStateConflict
from billing.domain.model import Payment, PaymentStatus
from contracts import Money
from contracts.events import (
    PaymentAuthorized,
    PaymentCaptured,
    PaymentDeclined,
    PaymentRefunded,
    PaymentVoided,
)

if TYPE_CHECKING:
    from collections.abc import Callable

NOW = datetime(2025, 11, 25, 12, 0, tzinfo=UTC)


def authorized(**overrides: object) -> Payment:
    fields: dict[str, object] = {
        "id": "payment-1",
        "order_id": "order-1",
        "amount": Money(1490, "EUR"),
        "provider": "payment-primary",
        "provider_reference": "auth_1",
        "at": NOW,
    }
    fields.update(overrides)
    return Payment.authorized(**fields)  # type: ignore[arg-type]


def declined() -> Payment:
    return Payment.declined(
        id="payment-2",
        order_id="order-1",
        amount=Money(1490, "EUR"),
        provider="payment-primary",
        reason="card_declined",
        at=NOW,
    )


def captured() -> Payment:
    payment = authorized()
    payment.capture()
    payment.events.clear()
    return payment


def test_an_authorized_payment_records_that_it_was_authorized_and_by_whom() -> None:
    payment = authorized()

    assert (payment.status, payment.provider, payment.authorization) == (
        PaymentStatus.AUTHORIZED,
        "payment-primary",
        "auth_1",
    )
    assert payment.events == [
        PaymentAuthorized(
            payment_id="payment-1",
            order_id="order-1",
            amount=Money(1490, "EUR"),
            provider="payment-primary",
            occurred_at=ANY,
        )
    ]


def test_a_declined_payment_keeps_the_reason_and_has_no_authorization() -> None:
    payment = declined()

    assert (payment.status, payment.decline_reason) == (PaymentStatus.DECLINED, "card_declined")
    assert payment.events == [
        PaymentDeclined(
            payment_id="payment-2",
            order_id="order-1",
            amount=Money(1490, "EUR"),
            reason="card_declined",
            occurred_at=ANY,
        )
    ]
    with pytest.raises(InvalidPayment):
        _ = payment.authorization


@pytest.mark.parametrize("amount", [0, -1])
def test_a_payment_is_for_a_positive_amount(amount: int) -> None:
    with pytest.raises(InvalidPayment) as caught:
        authorized(amount=Money(amount, "EUR"))

    assert caught.value.field == "amount"


@pytest.mark.parametrize("order_id", ["", "   ", "x" * 65])
def test_a_payment_is_for_an_order_named_by_a_short_id(order_id: str) -> None:
    with pytest.raises(InvalidPayment) as caught:
        authorized(order_id=order_id)

    assert caught.value.field == "order_id"


def test_a_payment_may_name_its_customer() -> None:
    assert authorized().customer_id is None
    assert authorized(customer_id="customer-7").customer_id == "customer-7"


@pytest.mark.parametrize("customer_id", ["", "   ", "c" * 101])
def test_a_named_customer_has_a_short_id(customer_id: str) -> None:
    with pytest.raises(InvalidPayment) as caught:
        authorized(customer_id=customer_id)

    assert caught.value.field == "customer_id"


def test_capturing_an_authorized_payment_takes_the_money_once() -> None:
    payment = authorized()
    payment.events.clear()

    payment.capture()
    payment.capture()

    assert payment.status is PaymentStatus.CAPTURED
    assert payment.events == [
        PaymentCaptured("payment-1", "order-1", Money(1490, "EUR"), occurred_at=ANY)
    ]


def test_voiding_an_authorized_payment_releases_it_once() -> None:
    payment = authorized()
    payment.events.clear()

    payment.void()
    payment.void()

    assert payment.status is PaymentStatus.VOIDED
    assert payment.events == [
        PaymentVoided("payment-1", "order-1", Money(1490, "EUR"), occurred_at=ANY)
    ]


def test_refunding_a_captured_payment_gives_the_money_back_once() -> None:
    payment = captured()

    payment.refund()
    payment.refund()

    assert payment.status is PaymentStatus.REFUNDED
    assert payment.events == [
        PaymentRefunded("payment-1", "order-1", Money(1490, "EUR"), occurred_at=ANY)
    ]


@pytest.mark.parametrize(
    ("payment", "action"),
    [
        (declined, Payment.capture),
        (declined, Payment.void),
        (declined, Payment.refund),
        (authorized, Payment.refund),
        (captured, Payment.void),
    ],
    ids=[
        "capture-declined",
        "void-declined",
        "refund-declined",
        "refund-authorized",
        "void-captured",
    ],
)
def test_an_action_the_status_does_not_allow_is_a_conflict_and_changes_nothing(
    payment: Callable[[], Payment], action: Callable[[Payment], None]
) -> None:
    subject = payment()
    before = subject.status
    subject.events.clear()

    with pytest.raises(PaymentStateConflict) as caught:
        action(subject)

    assert (subject.status, subject.events) == (before, [])
    assert caught.value.status is before


def test_a_voided_or_refunded_payment_cannot_be_captured_again() -> None:
    voided = authorized()
    voided.void()
    refunded = captured()
    refunded.refund()

    with pytest.raises(PaymentStateConflict):
        voided.capture()
    with pytest.raises(PaymentStateConflict):
        refunded.capture()
