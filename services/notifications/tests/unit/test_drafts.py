"""What each event tells the customer, in words."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contracts import Money
from contracts.events import (
    Delivery,
    OrderCancelled,
    OrderConfirmed,
    OrderItem,
    OrderPlaced,
    OrderRejected,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentDeclined,
    PaymentRefunded,
    PaymentVoided,
    PricedItem,
    ReservationCommitted,
    StockLine,
)
from notifications.domain.drafts import draft_for
from notifications.domain.model import Draft

from .conftest import AT

TOTAL = Money(5990, "EUR")
TAGINE = PricedItem("p-1", "TAGINE-CLAY-30CM", "Clay tagine, 30 cm", 2, Money(2995, "EUR"))


@pytest.mark.parametrize(
    ("event", "customer_id", "text"),
    [
        (
            OrderPlaced("o-123", "c-1", (OrderItem("p-1", 2), OrderItem("p-2", 1)), AT),
            "c-1",
            "We have received your order o-123: 3 items",
        ),
        (
            OrderPlaced(
                "o-123",
                "c-1",
                (OrderItem("p-1", 2),),
                AT,
                delivery=Delivery(
                    "Amina Haddad", "12 Rue Nationale", "59000", "Lille", "FR", "express"
                ),
            ),
            "c-1",
            "We have received your order o-123: 2 items, express delivery to Amina Haddad, "
            "12 Rue Nationale, 59000 Lille, FR",
        ),
        (
            OrderPlaced(
                "o-123",
                "c-1",
                (OrderItem("p-1", 2),),
                AT,
                delivery=Delivery(
                    "Amina Haddad", "12 Rue Nationale", "59000", "Lille", "FR", "express"
                ),
                delivery_price=Money(990, "EUR"),
            ),
            "c-1",
            "We have received your order o-123: 2 items, express delivery (9.90 EUR) to "
            "Amina Haddad, 12 Rue Nationale, 59000 Lille, FR",
        ),
        (
            OrderPlaced(
                "o-123",
                "c-1",
                (OrderItem("p-1", 2),),
                AT,
                delivery=Delivery(
                    "Amina Haddad", "12 Rue Nationale", "59000", "Lille", "FR", "standard"
                ),
                delivery_price=Money(0, "EUR"),
            ),
            "c-1",
            "We have received your order o-123: 2 items, standard delivery (free) to "
            "Amina Haddad, 12 Rue Nationale, 59000 Lille, FR",
        ),
        (
            OrderConfirmed("o-123", "c-1", (TAGINE,), TOTAL, AT),
            "c-1",
            "Your order o-123 is confirmed: 2 items, 59.90 EUR",
        ),
        (
            OrderRejected("o-123", "c-1", "out of stock: TAGINE-CLAY-30CM", AT),
            "c-1",
            "Your order o-123 could not be completed: out of stock: TAGINE-CLAY-30CM",
        ),
        (
            OrderCancelled("o-123", "c-1", was_confirmed=False, total=None, occurred_at=AT),
            "c-1",
            "Your order o-123 is cancelled",
        ),
        (
            OrderCancelled("o-123", "c-1", was_confirmed=True, total=TOTAL, occurred_at=AT),
            "c-1",
            "Your order o-123 is cancelled; the 59.90 EUR you paid will be refunded",
        ),
        (
            PaymentDeclined("pay-1", "o-123", TOTAL, "card_declined", AT, customer_id="c-1"),
            "c-1",
            "Payment of 59.90 EUR for order o-123 declined: card declined",
        ),
        (
            PaymentCaptured("pay-1", "o-123", TOTAL, AT, customer_id="c-1"),
            "c-1",
            "Payment of 59.90 EUR received for order o-123",
        ),
        (
            PaymentVoided("pay-1", "o-123", TOTAL, AT),
            None,
            "The 59.90 EUR held on your card for order o-123 was released",
        ),
        (
            PaymentRefunded("pay-1", "o-123", Money(1500, "JPY"), AT, customer_id="c-1"),
            "c-1",
            "1500 JPY refunded for order o-123",
        ),
    ],
    ids=lambda value: type(value).__name__ if not isinstance(value, str | None) else "",
)
def test_each_event_tells_the_customer_what_happened(event, customer_id, text):
    assert draft_for(event) == Draft(
        order_id="o-123",
        customer_id=customer_id,
        subject=event.event_type,
        text=text,
        occurred_at=datetime(2026, 11, 25, 10, 0, tzinfo=UTC),
    )


def test_one_item_is_not_items():
    draft = draft_for(OrderPlaced("o-1", "c-1", (OrderItem("p-1", 1),), AT))
    assert draft is not None
    assert draft.text == "We have received your order o-1: 1 item"


@pytest.mark.parametrize(
    "event",
    [
        PaymentAuthorized("pay-1", "o-1", TOTAL, "payment-primary", AT, customer_id="c-1"),
        ReservationCommitted("o-1", (StockLine("TAGINE-CLAY-30CM", 1),), AT),
    ],
)
def test_events_that_are_no_news_for_the_customer_make_no_draft(event):
    assert draft_for(event) is None


def test_moments_are_kept_in_utc():
    event = OrderRejected("o-1", "c-1", "gone", "2026-11-25T11:00:00+01:00")
    draft = draft_for(event)
    assert draft is not None
    assert draft.occurred_at == datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    assert draft.occurred_at.tzinfo is UTC


@pytest.mark.parametrize("moment", ["2026-11-25T10:00:00", "yesterday"])
def test_a_moment_without_a_time_zone_or_not_a_moment_is_refused(moment):
    with pytest.raises(ValueError, match=moment):
        draft_for(OrderRejected("o-1", "c-1", "gone", moment))
