"""What each order and payment event tells the customer, in words.

An authorized payment tells nothing: the confirmation (or the rejection) follows at once.
"""

from __future__ import annotations

from datetime import UTC, datetime

from contracts import Money
from contracts.events import (
    Delivery,
    Event,
    OrderCancelled,
    OrderConfirmed,
    OrderPlaced,
    OrderRejected,
    PaymentCaptured,
    PaymentDeclined,
    PaymentRefunded,
    PaymentVoided,
)
from notifications.domain.model import Draft


def draft_for(event: Event) -> Draft | None:
    """The notification ``event`` makes, or None if it is not news for the customer.

    Raises ValueError if the event's moment is not an ISO 8601 time with a time zone.
    """
    text = _text(event)
    if text is None:
        return None
    order_id, customer_id, occurred_at = _about(event)
    return Draft(
        order_id=order_id,
        customer_id=customer_id,
        subject=event.event_type,
        text=text,
        occurred_at=_moment(occurred_at),
    )


def _text(event: Event) -> str | None:  # noqa: PLR0911 - one answer per kind of event
    match event:
        case OrderPlaced():
            received = f"We have received your order {event.order_id}: {_items(event.item_count)}"
            if event.delivery is None:
                return received
            return f"{received}, {_delivered(event.delivery, event.delivery_price)}"
        case OrderConfirmed():
            return (
                f"Your order {event.order_id} is confirmed: {_items(event.item_count)}, "
                f"{event.total.format()}"
            )
        case OrderRejected():
            return f"Your order {event.order_id} could not be completed: {event.reason}"
        case OrderCancelled():
            if event.was_confirmed and event.total is not None:
                return (
                    f"Your order {event.order_id} is cancelled; "
                    f"the {event.total.format()} you paid will be refunded"
                )
            return f"Your order {event.order_id} is cancelled"
        case PaymentDeclined():
            return (
                f"Payment of {event.amount.format()} for order {event.order_id} declined: "
                f"{_words(event.reason)}"
            )
        case PaymentCaptured():
            return f"Payment of {event.amount.format()} received for order {event.order_id}"
        case PaymentVoided():
            return (
                f"The {event.amount.format()} held on your card for order {event.order_id} "
                "was released"
            )
        case PaymentRefunded():
            return f"{event.amount.format()} refunded for order {event.order_id}"
        case _:
            return None


def _about(event: Event) -> tuple[str, str | None, str]:
    """The order, the customer (if named) and the moment of an order or payment event."""
    match event:
        case OrderPlaced() | OrderConfirmed() | OrderRejected() | OrderCancelled():
            return event.order_id, event.customer_id, event.occurred_at
        case PaymentDeclined() | PaymentCaptured() | PaymentVoided() | PaymentRefunded():
            return event.order_id, event.customer_id, event.occurred_at
        case _:
            raise TypeError(f"{event.event_type} is not about an order")


def _moment(occurred_at: str) -> datetime:
    moment = datetime.fromisoformat(occurred_at)
    if moment.tzinfo is None:
        raise ValueError(f"the moment {occurred_at!r} has no time zone")
    return moment.astimezone(UTC)


def _items(count: int) -> str:
    return "1 item" if count == 1 else f"{count} items"


def _delivered(delivery: Delivery, price: Money | None) -> str:
    """Where and how an order travels, in words, and what that costs (an order placed
    before deliveries had prices says none): the customer checks the address here."""
    cost = "" if price is None else f" ({'free' if price.amount == 0 else price.format()})"
    return (
        f"{delivery.option} delivery{cost} to {delivery.name}, {delivery.address}, "
        f"{delivery.postcode} {delivery.city}, {delivery.country}"
    )


def _words(reason: str) -> str:
    """A provider's code (``card_declined``) as words (``card declined``)."""
    return reason.replace("_", " ")
