"""Billing's domain events as the ``payments`` topic carries them (``contracts.events``).

The unit of work calls :func:`publish` as it commits, so the events of the payments written
in a transaction reach the outbox in that same transaction: published if, and only if, the
change they describe is stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, assert_never

from billing.domain import events
from contracts.events import payments as published
from contracts.events import timestamp

if TYPE_CHECKING:
    from collections.abc import Iterable

    from billing.domain.model import Payment
    from chassis.messaging.outbox import Outbox
    from contracts.events import Event


def publish(payments: Iterable[Payment], outbox: Outbox) -> None:
    """Move the events the payments recorded into the outbox, keyed by their order's id.

    The order's id, not the payment's, so that a consumer gets an order's payments in order.
    """
    occurred_at = timestamp(datetime.now(UTC))
    for payment in payments:
        for event in payment.events:
            outbox.add_event(
                published.TOPIC, payment.order_id, contract_event(payment, event, occurred_at)
            )
        payment.events.clear()


def contract_event(payment: Payment, event: events.Event, occurred_at: str) -> Event:
    """``event`` in its published form; ``payment`` fills in what the domain event leaves out."""
    customer_id = payment.customer_id
    match event:
        case events.PaymentAuthorized():
            return published.PaymentAuthorized(
                payment_id=event.payment_id,
                order_id=event.order_id,
                amount=event.amount,
                provider=event.provider,
                occurred_at=occurred_at,
                customer_id=customer_id,
            )
        case events.PaymentDeclined():
            return published.PaymentDeclined(
                payment_id=event.payment_id,
                order_id=event.order_id,
                amount=event.amount,
                reason=event.reason,
                occurred_at=occurred_at,
                customer_id=customer_id,
            )
        case events.PaymentCaptured():
            return published.PaymentCaptured(
                payment_id=event.payment_id,
                order_id=event.order_id,
                amount=event.amount,
                occurred_at=occurred_at,
                customer_id=customer_id,
            )
        case events.PaymentVoided():
            return published.PaymentVoided(
                payment_id=event.payment_id,
                order_id=event.order_id,
                amount=payment.amount,
                occurred_at=occurred_at,
                customer_id=customer_id,
            )
        case events.PaymentRefunded():
            return published.PaymentRefunded(
                payment_id=event.payment_id,
                order_id=event.order_id,
                amount=event.amount,
                occurred_at=occurred_at,
                customer_id=customer_id,
            )
        case _:
            assert_never(event)
