"""Taking in messages, rebuilding from the archive, and reading a customer's history, on fakes."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import random

import pytest

from chassis.messaging import Delivery, Message
from contracts import Money
from contracts.events import (
    MalformedEvent,
    OrderItem,
    OrderPlaced,
    PaymentCaptured,
    UnsupportedSchemaVersion,
)
from order_history.domain.model import OrderStatus, PaymentState, StockState
from order_history.entrypoints.consumers import EventConsumer, consumers
from order_history.service_layer import queries
from order_history.service_layer.handlers import take_in
from order_history.service_layer.ports import Archived
from order_history.service_layer.rebuilding import (
    AlreadyRebuildingError,
    Rebuilds,
    RebuildState,
    rebuild,
)

from .conftest import (
    CAPTURED,
    CONFIRMED_STORY,
    PLACED,
    SAFFRON_CREATED,
    SAFFRON_ID,
    SAFFRON_RENAMED,
    TAGINE_CREATED,
    TAGINE_ID,
    at,
    message,
)
from .fakes import FakeStore, FakeUnitOfWork


async def test_a_message_is_archived_and_merged_into_its_orders_view(
    uow: FakeUnitOfWork, store: FakeStore
) -> None:
    placed = message(PLACED)

    assert await take_in(placed, uow)

    assert [archived.message for archived in store.archive] == [placed]
    assert store.orders["o-1"].status is OrderStatus.PENDING
    assert store.locks == 1


async def test_a_message_delivered_again_changes_nothing(
    uow: FakeUnitOfWork, store: FakeStore
) -> None:
    captured = message(CAPTURED)
    await take_in(captured, uow)
    before = copy.deepcopy(store.orders)

    assert not await take_in(captured, uow)

    assert len(store.archive) == 1
    assert store.orders == before


async def test_an_event_type_not_known_here_is_archived_for_a_later_version_to_project(
    uow: FakeUnitOfWork, store: FakeStore
) -> None:
    shipped = Message(topic="orders", key="o-1", event_type="OrderShipped", payload=b"{}")

    assert await take_in(shipped, uow)

    assert [archived.message for archived in store.archive] == [shipped]
    assert store.orders == {}


@pytest.mark.parametrize(
    ("payload", "version", "error"),
    [
        (b"not json", 1, MalformedEvent),
        (b'{"order_id": "o-1"}', 1, MalformedEvent),
        (PLACED.to_json(), 9, UnsupportedSchemaVersion),
    ],
)
async def test_a_message_that_cannot_be_read_is_refused_and_nothing_is_stored(
    uow: FakeUnitOfWork, store: FakeStore, payload: bytes, version: int, error: type[Exception]
) -> None:
    unreadable = Message(
        topic="orders", key="o-1", event_type="OrderPlaced", payload=payload, schema_version=version
    )

    with pytest.raises(error):
        await take_in(unreadable, uow)

    assert (store.archive, store.orders) == ([], {})


async def test_fields_a_newer_producer_added_are_ignored(
    uow: FakeUnitOfWork, store: FakeStore
) -> None:
    newer = message(PLACED)
    payload = newer.payload.replace(b"{", b'{"gift_wrap":true,', 1)

    await take_in(dataclasses.replace(newer, payload=payload), uow)

    assert store.orders["o-1"].ordered == PLACED.items


async def test_a_rebuild_gives_exactly_the_model_the_live_projection_built(
    uow: FakeUnitOfWork, store: FakeStore
) -> None:
    messages = [message(event) for event in (*CONFIRMED_STORY, SAFFRON_CREATED, TAGINE_CREATED)]
    messages += [message(SAFFRON_RENAMED), messages[3], messages[0]]  # redeliveries
    random.Random(7).shuffle(messages)
    for each in messages:
        await take_in(each, uow)
    live = (copy.deepcopy(store.orders), copy.deepcopy(store.products))
    store.orders.clear()  # lost, or built by an older version: rebuilt from the archive alone
    store.products.clear()
    seen: list[tuple[int, int]] = []

    rebuilt = await rebuild(uow, lambda done, total: seen.append((done, total)))

    assert (store.orders, store.products) == live
    assert (rebuilt.events, rebuilt.orders, rebuilt.products) == (9, 1, 2)
    assert seen == [(0, 9), (9, 9)]
    assert store.rebuilt_at is not None


async def test_a_rebuild_that_meets_an_unreadable_message_leaves_the_model_as_it_was(
    uow: FakeUnitOfWork, store: FakeStore
) -> None:
    await take_in(message(PLACED), uow)
    store.archive.append(Archived(2, Message("orders", "o-1", "OrderPlaced", b"")))
    before = copy.deepcopy(store.orders)

    with pytest.raises(MalformedEvent):
        await rebuild(uow)

    assert store.orders == before
    assert store.rebuilt_at is None


async def test_a_customers_orders_are_listed_latest_first_with_product_names(
    uow: FakeUnitOfWork, store: FakeStore
) -> None:
    later = OrderPlaced("o-2", "c-1", (OrderItem(SAFFRON_ID, 1),), at(40))
    strangers = OrderPlaced("o-3", "c-2", (OrderItem(TAGINE_ID, 1),), at(50))
    unplaced = PaymentCaptured("pay-9", "o-9", Money(100, "EUR"), at(5), customer_id="c-1")
    for event in (*CONFIRMED_STORY, later, strangers, unplaced, SAFFRON_CREATED, SAFFRON_RENAMED):
        await take_in(message(event), uow)

    page = await queries.orders_of(uow, "c-1")

    assert [past.view.order_id for past in page.items] == ["o-2", "o-1"]
    assert page.total == 2
    [pending, confirmed] = page.items
    # Not priced yet: the catalog's latest name; priced: the name it was confirmed with.
    assert [(line.name, line.unit_price) for line in pending.lines] == [
        ("Taliouine saffron threads, 2 g", None)
    ]
    assert [line.name for line in confirmed.lines] == ["Saffron threads", "Clay tagine, 30 cm"]
    assert confirmed.view.payment is not None
    assert confirmed.view.payment.state is PaymentState.CAPTURED
    assert confirmed.view.stock is not None
    assert confirmed.view.stock.state is StockState.COMMITTED
    assert (await queries.orders_of(uow, "c-1", page=2, page_size=1)).items[0].view.order_id == (
        "o-1"
    )
    assert (await queries.orders_of(uow, "c-nobody")).total == 0


async def test_one_rebuild_runs_at_a_time_and_tells_how_it_went(
    uow: FakeUnitOfWork, store: FakeStore
) -> None:
    await take_in(message(PLACED), uow)
    rebuilds = Rebuilds(lambda: FakeUnitOfWork(store))

    started = rebuilds.start()
    assert started.state is RebuildState.RUNNING
    with pytest.raises(AlreadyRebuildingError):
        rebuilds.start()
    status = await rebuilds.finished()

    assert status is not None
    assert (status.state, status.done, status.total) == (RebuildState.DONE, 1, 1)
    assert status.result is not None
    assert status.result.orders == 1
    assert rebuilds.start().state is RebuildState.RUNNING  # the next one may start
    await rebuilds.stop()


async def test_the_consumer_hands_each_delivery_to_the_service_layer(
    uow: FakeUnitOfWork, store: FakeStore
) -> None:
    consumer = EventConsumer(lambda: uow)

    await consumer(Delivery(message=message(PLACED), group="order-history", partition=0))

    assert "o-1" in store.orders


async def test_deliveries_of_every_topic_take_turns(store: FakeStore) -> None:
    """So that the ones waiting for the read model hold no database connection meanwhile."""
    at_once: list[int] = []

    class CountingUnitOfWork(FakeUnitOfWork):
        async def __aenter__(self) -> CountingUnitOfWork:
            at_once.append(at_once[-1] + 1 if at_once else 1)
            await asyncio.sleep(0.001)  # a database round trip, giving others their chance
            return await super().__aenter__()

        async def __aexit__(self, *exc: object) -> None:
            at_once.append(at_once[-1] - 1)
            await super().__aexit__(None, None, None)

    consumer = EventConsumer(lambda: CountingUnitOfWork(store))
    deliveries = [
        Delivery(message=message(event), group="order-history", partition=n % 8)
        for n, event in enumerate([*CONFIRMED_STORY, SAFFRON_CREATED, TAGINE_CREATED])
    ]

    await asyncio.gather(*(consumer(delivery) for delivery in deliveries))

    assert max(at_once) == 1
    assert len(store.archive) == len(deliveries)


def test_order_history_listens_to_orders_payments_stock_and_catalog() -> None:
    listening = consumers(lambda: FakeUnitOfWork(FakeStore()))

    assert [consumer.topic for consumer in listening] == ["orders", "payments", "stock", "catalog"]
