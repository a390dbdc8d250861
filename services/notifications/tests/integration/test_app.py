"""Notifications on a real embedded bus: events published on it become notifications in the
HTTP API, once each; a message that cannot be read ends among the dead letters."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from chassis.messaging import Message
from chassis.testing import readable_client_bearer
from contracts import Money
from contracts.events import (
    OrderConfirmed,
    OrderItem,
    OrderPlaced,
    PaymentCaptured,
    PaymentDeclined,
    PricedItem,
)

from .conftest import bearer, eventually

if TYPE_CHECKING:
    import httpx

    from chassis.messaging import MessageBus
    from contracts.events import Event

PROBLEM = "application/problem+json"
TOTAL = Money(5990, "EUR")


def message(event: Event, key: str, message_id: str | None = None) -> Message:
    """``event`` as its producer's outbox would publish it."""
    return Message(
        topic=event.topic,
        key=key,
        event_type=event.event_type,
        schema_version=event.schema_version,
        payload=event.to_json(),
        message_id=message_id or uuid.uuid4().hex,
    )


async def notifications_of(client: httpx.AsyncClient, reader: str, **params: Any) -> Any:
    """The notifications ``reader`` reads with their own token."""
    response = await client.get("/notifications", params=params, headers=bearer(reader))
    assert response.status_code == 200, response.text
    return response.json()


async def test_order_and_payment_events_become_the_customers_notifications(
    notifications: httpx.AsyncClient, bus: MessageBus
) -> None:
    await bus.publish(
        [
            message(
                OrderPlaced("o-123", "c-1", (OrderItem("p-1", 2),), "2026-11-25T10:00:00+00:00"),
                "o-123",
            ),
            message(
                OrderConfirmed(
                    "o-123",
                    "c-1",
                    (PricedItem("p-1", "TAGINE-CLAY-30CM", "Clay tagine", 2, Money(2995, "EUR")),),
                    TOTAL,
                    "2026-11-25T10:00:02+00:00",
                ),
                "o-123",
            ),
            message(
                OrderPlaced("o-9", "c-2", (OrderItem("p-1", 1),), "2026-11-25T10:00:00+00:00"),
                "o-9",
            ),
        ]
    )

    async def orders_there() -> bool:
        return (await notifications_of(notifications, "c-1"))["total"] == 2

    await eventually(orders_there)
    # This payment names no customer: notifications knows it from the order's events.
    await bus.publish(
        [message(PaymentCaptured("pay-1", "o-123", TOTAL, "2026-11-25T10:00:01+00:00"), "o-123")]
    )

    async def all_there() -> bool:
        return (await notifications_of(notifications, "c-1"))["total"] == 3

    await eventually(all_there)
    body = await notifications_of(notifications, "c-1")
    assert [(item["subject"], item["text"]) for item in body["items"]] == [
        ("OrderConfirmed", "Your order o-123 is confirmed: 2 items, 59.90 EUR"),
        ("PaymentCaptured", "Payment of 59.90 EUR received for order o-123"),
        ("OrderPlaced", "We have received your order o-123: 2 items"),
    ]
    assert body["items"][0]["occurred_at"] == "2026-11-25T10:00:02Z"
    assert (body["page"], body["page_size"], body["pages"]) == (1, 20, 1)
    second_page = await notifications_of(notifications, "c-1", page=2, page_size=2)
    assert [item["subject"] for item in second_page["items"]] == ["OrderPlaced"]
    assert (await notifications_of(notifications, "c-2"))["total"] == 1


async def test_an_event_delivered_twice_makes_one_notification(
    notifications: httpx.AsyncClient, bus: MessageBus
) -> None:
    declined = message(
        PaymentDeclined(
            "pay-1", "o-1", TOTAL, "card_declined", "2026-11-25T10:00:00+00:00", customer_id="c-1"
        ),
        "o-1",
    )
    await bus.publish([declined])
    await bus.publish([declined])  # the relay crashed before marking it sent, say
    marker = message(
        OrderPlaced("o-2", "c-1", (OrderItem("p-1", 1),), "2026-11-25T09:00:00+00:00"), "o-1"
    )
    await bus.publish([marker])  # same key, so handled after both copies

    async def marker_there() -> bool:
        items = (await notifications_of(notifications, "c-1"))["items"]
        return any(item["order_id"] == "o-2" for item in items)

    await eventually(marker_there)
    body = await notifications_of(notifications, "c-1")
    assert [item["text"] for item in body["items"]] == [
        "Payment of 59.90 EUR for order o-1 declined: card declined",
        "We have received your order o-2: 1 item",
    ]


async def test_a_poison_event_ends_among_the_dead_letters(
    notifications: httpx.AsyncClient, bus: MessageBus
) -> None:
    poison = Message(
        topic="orders", key="o-1", event_type="OrderConfirmed", payload=b"not json at all"
    )
    await bus.publish([poison])

    async def buried() -> bool:
        return bool((await notifications.get("/internal/dead-letters")).json()["items"])

    await eventually(buried)
    [letter] = (await notifications.get("/internal/dead-letters")).json()["items"]
    assert (letter["message_id"], letter["group"], letter["topic"]) == (
        poison.message_id,
        "notifications",
        "orders",
    )
    assert letter["error"].startswith("MalformedEvent: OrderConfirmed payload is not JSON")
    assert (await notifications_of(notifications, "c-1"))["total"] == 0


async def test_listing_without_a_token_is_a_401_problem_with_a_bearer_challenge(
    notifications: httpx.AsyncClient,
) -> None:
    response = await notifications.get("/notifications")

    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"] == "Bearer"


async def test_listing_with_a_token_lacking_orders_read_is_a_403_problem(
    notifications: httpx.AsyncClient,
) -> None:
    response = await notifications.get("/notifications", headers=bearer("c-1", "orders:write"))

    assert response.status_code == 403
    assert response.json()["required_scopes"] == ["orders:read"]


async def test_a_clients_own_token_reads_no_ones_notifications(
    notifications: httpx.AsyncClient,
) -> None:
    # Called directly, not through the gateway (which refuses it too): zero trust.
    token = readable_client_bearer("bff-web", "orders:read")

    response = await notifications.get("/notifications", headers=token)

    assert response.status_code == 403
    assert response.json()["type"].endswith("/customer-required")


async def test_a_customer_naming_another_in_the_query_still_reads_only_their_own(
    notifications: httpx.AsyncClient, bus: MessageBus
) -> None:
    await bus.publish(
        [
            message(
                OrderPlaced("o-9", "c-1", (OrderItem("p-1", 1),), "2026-11-25T10:00:00+00:00"),
                "o-9",
            )
        ]
    )

    async def told() -> bool:
        return bool((await notifications_of(notifications, "c-1"))["total"])

    await eventually(told)
    assert (await notifications_of(notifications, "c-2", customer="c-1"))["total"] == 0


async def test_a_customer_nobody_told_anything_has_no_notifications(
    notifications: httpx.AsyncClient,
) -> None:
    assert await notifications_of(notifications, "c-nobody") == {
        "items": [],
        "page": 1,
        "page_size": 20,
        "total": 0,
        "pages": 0,
    }
