"""Taking in events: one notification per message, for the right customer."""

from __future__ import annotations

import pytest

from chassis.messaging import Delivery, Message
from contracts import Money
from contracts.events import (
    OrderConfirmed,
    OrderItem,
    OrderPlaced,
    OrderRejected,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentDeclined,
    PricedItem,
    UnsupportedSchemaVersion,
)
from notifications.domain.errors import CustomerUnknown
from notifications.entrypoints.consumers import EventConsumer, consumers
from notifications.service_layer.handlers import take_in
from notifications.service_layer.queries import list_notifications

from .conftest import AT, delivery_of
from .fakes import FakeStore, FakeUnitOfWork

TOTAL = Money(5990, "EUR")
PLACED = OrderPlaced("o-1", "c-1", (OrderItem("p-1", 2),), AT)
CONFIRMED = OrderConfirmed(
    "o-1", "c-1", (PricedItem("p-1", "SKU-1", "Tagine", 2, Money(2995, "EUR")),), TOTAL, AT
)


async def test_an_event_becomes_a_notification_for_its_customer(
    uow: FakeUnitOfWork, store: FakeStore
) -> None:
    delivery = delivery_of(CONFIRMED)

    notification = await take_in(CONFIRMED, delivery, uow)

    assert notification is not None
    assert store.notifications == [notification]
    assert (notification.id, notification.customer_id, notification.text) == (
        delivery.message.message_id,
        "c-1",
        "Your order o-1 is confirmed: 2 items, 59.90 EUR",
    )


async def test_a_message_delivered_again_makes_no_second_notification(
    uow: FakeUnitOfWork, store: FakeStore
) -> None:
    delivery = delivery_of(CONFIRMED)

    await take_in(CONFIRMED, delivery, uow)
    again = await take_in(CONFIRMED, delivery, uow)

    assert again is None
    assert len(store.notifications) == 1


async def test_the_same_news_in_another_message_is_another_notification(
    uow: FakeUnitOfWork, store: FakeStore
) -> None:
    await take_in(CONFIRMED, delivery_of(CONFIRMED), uow)
    await take_in(CONFIRMED, delivery_of(CONFIRMED), uow)

    assert len(store.notifications) == 2


async def test_a_payment_naming_no_customer_goes_to_the_customer_of_its_order(
    uow: FakeUnitOfWork, store: FakeStore
) -> None:
    await take_in(PLACED, delivery_of(PLACED), uow)
    captured = PaymentCaptured("pay-1", "o-1", TOTAL, AT)

    notification = await take_in(captured, delivery_of(captured), uow)

    assert notification is not None
    assert notification.customer_id == "c-1"
    assert store.order_customers == {"o-1": "c-1"}


async def test_a_payment_of_an_order_not_seen_yet_is_refused_until_it_is(
    uow: FakeUnitOfWork, store: FakeStore
) -> None:
    declined = PaymentDeclined("pay-1", "o-1", TOTAL, "card_declined", AT)
    delivery = delivery_of(declined)

    with pytest.raises(CustomerUnknown, match="o-1"):
        await take_in(declined, delivery, uow)
    assert (store.notifications, store.handled) == ([], set())

    await take_in(PLACED, delivery_of(PLACED), uow)
    notification = await take_in(declined, delivery, uow)
    assert notification is not None
    assert notification.customer_id == "c-1"


async def test_an_event_that_is_no_news_is_still_recorded_as_handled(
    uow: FakeUnitOfWork, store: FakeStore
) -> None:
    authorized = PaymentAuthorized("pay-1", "o-1", TOTAL, "payment-primary", AT)
    delivery = delivery_of(authorized)

    assert await take_in(authorized, delivery, uow) is None
    assert store.notifications == []
    assert store.handled == {("notifications", delivery.message.message_id)}


async def test_a_customers_notifications_are_listed_newest_first(
    uow: FakeUnitOfWork, store: FakeStore
) -> None:
    for minute, order_id in enumerate(["o-1", "o-2", "o-3"]):
        rejected = OrderRejected(order_id, "c-1", "gone", f"2026-11-25T10:0{minute}:00+00:00")
        await take_in(rejected, delivery_of(rejected), uow)
    other = OrderRejected("o-4", "c-2", "gone", AT)
    await take_in(other, delivery_of(other), uow)

    page = await list_notifications(uow, "c-1", page=1, page_size=2)

    assert [n.order_id for n in page.items] == ["o-3", "o-2"]
    assert (page.total, page.pages) == (3, 2)


async def test_the_consumer_skips_event_types_it_does_not_know(
    uow: FakeUnitOfWork, store: FakeStore
) -> None:
    consumer = EventConsumer(lambda: uow)
    unknown = Message(topic="orders", key="o-1", event_type="OrderShipped", payload=b"{}")

    await consumer(Delivery(message=unknown, group="notifications", partition=0))

    assert (store.notifications, store.handled) == ([], set())


async def test_the_consumer_refuses_what_it_cannot_read(uow: FakeUnitOfWork) -> None:
    consumer = EventConsumer(lambda: uow)
    newer = Message(
        topic="orders", key="o-1", event_type="OrderPlaced", payload=b"{}", schema_version=9
    )

    with pytest.raises(UnsupportedSchemaVersion):
        await consumer(Delivery(message=newer, group="notifications", partition=0))


def test_notifications_listens_to_orders_and_payments() -> None:
    listening = consumers(lambda: FakeUnitOfWork(FakeStore()))

    assert [consumer.topic for consumer in listening] == ["orders", "payments"]
