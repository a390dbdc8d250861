"""Order-history on a real embedded bus: events of four topics, in whatever order they come,
become each customer's order history in the HTTP API; a rebuild from the archive answers
exactly the same; only the customer reads their history."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import create_async_engine

from chassis import Database
from chassis.messaging import Message
from contracts import Money
from contracts.events import Delivery, OrderItem, OrderPlaced, OrderRejected, PaymentDeclined
from order_history.adapters.orm import projection
from order_history.adapters.unit_of_work import SqlAlchemyUnitOfWork

# services/order-history has no absolute module name (the dash): relative it is.
from ..unit.conftest import (  # noqa: TID252
    CONFIRMED_STORY,
    SAFFRON_CREATED,
    SAFFRON_ID,
    SAFFRON_RENAMED,
    TAGINE_CREATED,
    TAGINE_ID,
    at,
    message,
)
from .conftest import bearer, eventually

if TYPE_CHECKING:
    import httpx

    from chassis.messaging import MessageBus

PROBLEM = "application/problem+json"


async def history(client: httpx.AsyncClient, customer: str, **params: Any) -> Any:
    """The order history ``customer`` reads with their own token."""
    response = await client.get(
        f"/customers/{customer}/orders", params=params, headers=bearer(customer)
    )
    assert response.status_code == 200, response.text
    return response.json()


async def rebuilt(client: httpx.AsyncClient) -> Any:
    """Rebuild through the internal route and wait for the end; the last status."""
    started = await client.post("/internal/rebuild")
    assert started.status_code == 202, started.text
    return await rebuild_ended(client)


async def rebuild_ended(client: httpx.AsyncClient) -> Any:
    """The status of the latest rebuild, once it is no longer running."""
    status: dict[str, Any] = {}

    async def finished() -> bool:
        status.update((await client.get("/internal/rebuild")).json())
        return status["state"] != "running"

    await eventually(finished)
    return status


async def test_events_of_four_services_in_any_order_become_the_customers_history(
    order_history: httpx.AsyncClient, bus: MessageBus
) -> None:
    # Payments and stock before the order they are about; the catalog after it.
    story = [e for e in CONFIRMED_STORY if e.topic != "orders"]
    story += [e for e in CONFIRMED_STORY if e.topic == "orders"]
    delivery = Delivery("Amina Benali", "12 Derb Sidi Ahmed", "30110", "Fes", "MA", "express")
    declined = OrderPlaced("o-2", "c-1", (OrderItem(TAGINE_ID, 3),), at(30), delivery=delivery)
    story += [
        declined,
        PaymentDeclined("pay-2", "o-2", Money(8985, "EUR"), "card_declined", at(31)),
        OrderRejected("o-2", "c-1", "payment declined: card_declined", at(32)),
        SAFFRON_CREATED,
        TAGINE_CREATED,
        SAFFRON_RENAMED,
    ]
    await bus.publish([message(event) for event in story])

    async def told() -> bool:
        summary = [
            (
                order["status"],
                (order["payment"] or {}).get("state"),
                (order["stock"] or {}).get("state"),
                order["items"][0]["name"],
            )
            for order in (await history(order_history, "c-1"))["items"]
        ]
        return summary == [
            ("REJECTED", "DECLINED", None, "Clay tagine, 30 cm"),
            ("CONFIRMED", "CAPTURED", "COMMITTED", "Saffron threads"),
        ]

    await eventually(told)
    body = await history(order_history, "c-1")
    rejected, confirmed = body["items"]
    assert (body["total"], body["pages"]) == (2, 1)
    assert (rejected["order_id"], rejected["status"], rejected["reason"]) == (
        "o-2",
        "REJECTED",
        "payment declined: card_declined",
    )
    assert rejected["items"] == [
        {
            "product_id": TAGINE_ID,
            "sku": "CER-TAGINE-30CM",
            "name": "Clay tagine, 30 cm",
            "quantity": 3,
            "unit_price": None,
        }
    ]
    assert rejected["payment"] == {
        "state": "DECLINED",
        "amount": {"amount": 8985, "currency": "EUR"},
        "reason": "card_declined",
    }
    assert rejected["stock"] is None
    assert rejected["delivery"] == {
        "name": "Amina Benali",
        "address": "12 Derb Sidi Ahmed",
        "postcode": "30110",
        "city": "Fes",
        "country": "MA",
        "option": "express",
    }
    assert confirmed["delivery"] is None  # placed without one, as before deliveries
    assert (confirmed["order_id"], confirmed["status"]) == ("o-1", "CONFIRMED")
    assert confirmed["placed_at"] == "2026-11-25T10:10:00Z"
    assert confirmed["total"] == {"amount": 5975, "currency": "EUR"}
    assert [(i["product_id"], i["name"], i["quantity"]) for i in confirmed["items"]] == [
        (SAFFRON_ID, "Saffron threads", 2),  # the name it was confirmed with
        (TAGINE_ID, "Clay tagine, 30 cm", 1),
    ]
    assert confirmed["payment"]["state"] == "CAPTURED"
    assert confirmed["stock"]["state"] == "COMMITTED"
    assert confirmed["stock"]["lines"] == [
        {"sku": "SPC-SAFFRON-2G", "quantity": 2},
        {"sku": "CER-TAGINE-30CM", "quantity": 1},
    ]


async def test_a_rebuild_from_the_archive_answers_exactly_as_the_live_model(
    order_history: httpx.AsyncClient, bus: MessageBus, url: str
) -> None:
    events = [*CONFIRMED_STORY, SAFFRON_CREATED, SAFFRON_RENAMED]
    messages = [message(event) for event in events]
    await bus.publish(messages)
    await bus.publish(messages[:2])  # the relay published them again before marking them sent
    marker = message(OrderPlaced("o-9", "c-9", (OrderItem(TAGINE_ID, 1),), at(40)))
    for topic in ("orders", "payments", "stock", "catalog"):
        # Each topic's last message: once all are in, so is everything before them.
        await bus.publish([dataclasses.replace(marker, topic=topic, message_id=f"end-{topic}")])

    async def all_there() -> bool:
        return await archived(url) == len(events) + 4

    await eventually(all_there)
    live = await history(order_history, "c-1")

    status = await rebuilt(order_history)

    assert await history(order_history, "c-1") == live
    assert live["items"][0]["status"] == "CONFIRMED"
    assert (status["state"], status["done"], status["total"]) == ("done", 12, 12)
    assert (status["orders"], status["products"]) == (2, 1)


async def archived(url: str) -> int:
    """How many messages order-history has archived."""
    database = Database(url)
    try:
        async with SqlAlchemyUnitOfWork(database.sessionmaker) as uow:
            return await uow.archive.count()
    finally:
        await database.dispose()


async def test_a_second_rebuild_while_one_runs_is_a_409_and_none_before_is_a_404(
    order_history: httpx.AsyncClient, url: str
) -> None:
    none_yet = await order_history.get("/internal/rebuild")
    assert none_yet.status_code == 404
    assert none_yet.json()["type"].endswith("/rebuild-not-found")
    # A live event holding the read model keeps the first rebuild waiting.
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.execute(update(projection).values(rebuilds=projection.c.rebuilds))
        first = await order_history.post("/internal/rebuild")
        second = await order_history.post("/internal/rebuild")
        waiting = (await order_history.get("/internal/rebuild")).json()
    await engine.dispose()

    assert first.status_code == 202
    assert second.status_code == 409
    assert second.headers["content-type"] == PROBLEM
    assert second.json()["type"].endswith("/rebuild-running")
    assert waiting["state"] == "running"
    assert (await rebuild_ended(order_history))["state"] == "done"


async def test_a_poison_message_ends_among_the_dead_letters_and_is_not_archived(
    order_history: httpx.AsyncClient, bus: MessageBus
) -> None:
    poison = Message(topic="payments", key="o-1", event_type="PaymentCaptured", payload=b"{")
    await bus.publish([poison])

    async def buried() -> bool:
        return bool((await order_history.get("/internal/dead-letters")).json()["items"])

    await eventually(buried)
    [letter] = (await order_history.get("/internal/dead-letters")).json()["items"]
    assert (letter["message_id"], letter["group"]) == (poison.message_id, "order-history")
    assert (await rebuilt(order_history))["total"] == 0


async def test_without_a_token_the_history_is_a_401_with_a_bearer_challenge(
    order_history: httpx.AsyncClient,
) -> None:
    response = await order_history.get("/customers/c-1/orders")

    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_token_without_orders_read_is_a_403(order_history: httpx.AsyncClient) -> None:
    response = await order_history.get(
        "/customers/c-1/orders", headers=bearer("c-1", "orders:write")
    )

    assert response.status_code == 403
    assert response.json()["required_scopes"] == ["orders:read"]


async def test_another_customers_history_does_not_exist_for_the_caller(
    order_history: httpx.AsyncClient, bus: MessageBus
) -> None:
    await bus.publish([message(CONFIRMED_STORY[0])])

    async def there() -> bool:
        return (await history(order_history, "c-1"))["total"] == 1

    await eventually(there)
    response = await order_history.get("/customers/c-1/orders", headers=bearer("c-2"))

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"].endswith("/customer-not-found")


async def test_a_customer_without_orders_has_an_empty_history(
    order_history: httpx.AsyncClient,
) -> None:
    assert await history(order_history, "c-nobody") == {
        "items": [],
        "page": 1,
        "page_size": 20,
        "total": 0,
        "pages": 0,
    }


async def test_an_unchanged_history_answers_304_to_its_etag_and_a_changed_one_does_not(
    order_history: httpx.AsyncClient, bus: MessageBus
) -> None:
    await bus.publish([message(CONFIRMED_STORY[0])])

    async def there() -> bool:
        return (await history(order_history, "c-1"))["total"] == 1

    await eventually(there)
    path, headers = "/customers/c-1/orders", bearer("c-1")
    etag = (await order_history.get(path, headers=headers)).headers["etag"]

    unchanged = await order_history.get(path, headers={**headers, "If-None-Match": etag})
    assert unchanged.status_code == 304

    await bus.publish([message(CONFIRMED_STORY[-1])])

    async def confirmed() -> bool:
        return (await history(order_history, "c-1"))["items"][0]["status"] == "CONFIRMED"

    await eventually(confirmed)
    changed = await order_history.get(path, headers={**headers, "If-None-Match": etag})
    assert changed.status_code == 200


async def test_a_page_size_out_of_bounds_is_a_422_problem(
    order_history: httpx.AsyncClient,
) -> None:
    for params in ({"page_size": 0}, {"page_size": 101}, {"page": 0}):
        response = await order_history.get(
            "/customers/c-1/orders", params=params, headers=bearer("c-1")
        )
        assert response.status_code == 422, params
        assert response.headers["content-type"] == PROBLEM
