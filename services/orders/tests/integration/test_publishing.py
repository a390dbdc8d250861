"""The orders' events, and the saga's commands, reach the outbox in the transaction that
stores the change, or not at all."""

from __future__ import annotations

import asyncio
import uuid
from functools import partial
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import select, update

from chassis.messaging import connect
from chassis.messaging.message import Delivery, Message
from chassis.messaging.tables import outbox
from contracts import Money
from contracts.events import (
    OrderCancelled,
    OrderConfirmed,
    OrderItem,
    OrderPlaced,
    OrderRejected,
    PricedItem,
    decode,
)
from orders.adapters.unit_of_work import SqlAlchemyUnitOfWork
from orders.app import Upstreams
from orders.domain.commands import CancelOrder, RunStep
from orders.domain.errors import StaleOrder
from orders.entrypoints.saga_consumer import command_of, receipt_of
from orders.service_layer.checkout import Checkout, RetryPolicy
from orders.service_layer.handlers import cancel_order, place_order
from orders.service_layer.saga_handler import CheckoutSaga
from services.orders.tests.conftest import DECLINED_CARD, SAFFRON, TEA, bearer
from services.orders.tests.integration.conftest import order_body, orders_app
from services.orders.tests.unit.conftest import place_command

if TYPE_CHECKING:
    from chassis import Database
    from chassis.messaging import DeadLetter
    from contracts.events import Event
    from orders.settings import OrdersSettings
    from services.orders.tests.conftest import FakeBilling, FakeCatalog, FakeInventory


async def published(database: Database) -> list[tuple[str, Event]]:
    """The outbox's events, oldest first, as (key, decoded event); checks the headers."""
    async with database.sessionmaker() as session:
        rows = (await session.execute(select(outbox).order_by(outbox.c.id))).all()
    found = []
    for row in rows:
        assert row.topic in {"orders", RunStep.topic}
        if row.topic == RunStep.topic:
            continue
        assert row.headers["souk-key"] == row.key
        assert row.headers["souk-event-type"] == row.event_type
        found.append((row.key, decode(row.event_type, row.schema_version, row.payload)))
    return found


async def commands_sent(database: Database) -> list[tuple[str, str]]:
    """The saga's commands in the outbox, oldest first, as (key, step)."""
    async with database.sessionmaker() as session:
        query = select(outbox).where(outbox.c.topic == RunStep.topic).order_by(outbox.c.id)
        rows = (await session.execute(query)).all()
    return [(row.key, str(command_of(_message(row)).step)) for row in rows]


def _message(row: Any) -> Message:
    return Message.from_headers(row.topic, row.headers, row.payload)


class Saga:
    """The saga on the real database, its commands taken from the outbox as the bus would."""

    def __init__(self, database: Database, saga: CheckoutSaga) -> None:
        self._database = database
        self._saga = saga

    async def drive(self) -> None:
        """Hand every unsent command to the saga, oldest first, until none is left."""
        while True:
            async with self._database.sessionmaker() as session:
                query = (
                    select(outbox)
                    .where(outbox.c.topic == RunStep.topic, outbox.c.sent_at.is_(None))
                    .order_by(outbox.c.id)
                )
                row = (await session.execute(query)).first()
                if row is None:
                    return
                await session.execute(
                    update(outbox).where(outbox.c.id == row.id).values(sent_at=row.created_at)
                )
                await session.commit()
            message = _message(row)
            await self._saga.handle(
                command_of(message),
                receipt_of(Delivery(message, group="orders", partition=0, attempt=1)),
            )


@pytest.fixture
def saga(
    database: Database, catalog: FakeCatalog, inventory: FakeInventory, billing: FakeBilling
) -> Saga:
    checkout = Checkout(
        catalog=catalog,
        inventory=inventory,
        billing=billing,
        retry=RetryPolicy(attempts=1, base_delay=0, max_delay=0),
        reservation_ttl_seconds=60,
    )
    return Saga(
        database, CheckoutSaga(partial(SqlAlchemyUnitOfWork, database.sessionmaker), checkout)
    )


async def test_placing_an_order_stores_it_and_its_event_together(
    database: Database, uow: SqlAlchemyUnitOfWork
) -> None:
    placement = await place_order(
        place_command((SAFFRON.product_id, 2), (TEA.product_id, 1), customer="c-7"), uow
    )

    [(key, event)] = await published(database)
    order = placement.order
    assert key == order.id
    assert isinstance(event, OrderPlaced)
    assert event == OrderPlaced(
        order_id=order.id,
        customer_id="c-7",
        items=(OrderItem(SAFFRON.product_id, 2), OrderItem(TEA.product_id, 1)),
        occurred_at=event.occurred_at,
    )
    assert order.pending_events == []
    assert await commands_sent(database) == [(order.id, "price")]


async def test_a_replayed_placement_publishes_nothing_more(
    database: Database, uow: SqlAlchemyUnitOfWork
) -> None:
    command = place_command((SAFFRON.product_id, 1))
    await place_order(command, uow)
    replay = await place_order(command, uow)

    assert replay.replayed
    assert len(await published(database)) == 1
    assert len(await commands_sent(database)) == 1


async def test_a_transaction_left_without_commit_leaves_no_outbox_row(
    database: Database, uow: SqlAlchemyUnitOfWork
) -> None:
    placement = await place_order(place_command((SAFFRON.product_id, 1)), uow)

    async def cancel_then_crash() -> None:
        async with uow:
            order = await uow.orders.get(placement.order.id)
            assert order is not None
            order.cancel(order.created_at)
            await uow.orders.save(order)
            raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError, match="crash"):
        await cancel_then_crash()

    async with uow:
        order = await uow.orders.get(placement.order.id)
    assert order is not None
    assert order.status == "PENDING"
    assert [type(event) for _, event in await published(database)] == [OrderPlaced]


async def test_a_stale_save_publishes_nothing(
    database: Database, uow: SqlAlchemyUnitOfWork
) -> None:
    placement = await place_order(place_command((SAFFRON.product_id, 1)), uow)
    other = SqlAlchemyUnitOfWork(database.sessionmaker)

    async with other:
        late = await other.orders.get(placement.order.id)
        assert late is not None
        await cancel_order(CancelOrder(placement.order.id, "c-1"), uow)
        late.cancel(late.created_at)
        with pytest.raises(StaleOrder):
            await other.orders.save(late)
        await other.commit()

    assert [type(event) for _, event in await published(database)] == [
        OrderPlaced,
        OrderCancelled,
    ]


async def test_a_confirmed_order_publishes_its_priced_items_and_total(
    database: Database, uow: SqlAlchemyUnitOfWork, saga: Saga
) -> None:
    placement = await place_order(
        place_command((SAFFRON.product_id, 2), (TEA.product_id, 1), customer="c-7"), uow
    )

    await saga.drive()

    events = await published(database)
    assert [type(event) for _, event in events] == [OrderPlaced, OrderConfirmed]
    assert {key for key, _ in events} == {placement.order.id}
    assert [step for _, step in await commands_sent(database)] == [
        "price",
        "reserve-stock",
        "authorize-payment",
        "capture-payment",
        "commit-stock",
    ]
    confirmed = events[1][1]
    assert confirmed == OrderConfirmed(
        order_id=placement.order.id,
        customer_id="c-7",
        items=(
            PricedItem(SAFFRON.product_id, SAFFRON.sku, SAFFRON.name, 2, SAFFRON.price),
            PricedItem(TEA.product_id, TEA.sku, TEA.name, 1, TEA.price),
        ),
        total=Money(2 * 1490 + 850, "EUR"),
        occurred_at=confirmed.occurred_at,
    )


async def test_a_declined_card_publishes_the_rejection_with_its_reason(
    database: Database, uow: SqlAlchemyUnitOfWork, saga: Saga
) -> None:
    await place_order(place_command((SAFFRON.product_id, 1), card_token=DECLINED_CARD), uow)

    await saga.drive()

    [_, (_, rejected)] = await published(database)
    assert isinstance(rejected, OrderRejected)
    assert (rejected.customer_id, rejected.reason) == (
        "c-1",
        "payment declined: insufficient funds",
    )


async def test_cancelling_a_confirmed_order_publishes_what_will_be_refunded(
    database: Database, uow: SqlAlchemyUnitOfWork, saga: Saga
) -> None:
    placement = await place_order(place_command((SAFFRON.product_id, 2)), uow)
    await saga.drive()

    await cancel_order(CancelOrder(placement.order.id, "c-1"), uow)

    *_, (_, cancelled) = await published(database)
    assert isinstance(cancelled, OrderCancelled)
    assert (cancelled.was_confirmed, cancelled.total) == (True, Money(2980, "EUR"))


class Buried:
    """A dead-letter sink for a test's listener, which never fails."""

    async def bury(self, dead_letter: DeadLetter) -> None:
        raise AssertionError(f"the listener failed: {dead_letter.error}")


async def test_the_app_relays_its_outbox_to_the_bus(
    settings: OrdersSettings, upstreams: Upstreams
) -> None:
    bus = connect(settings.broker_url_or_default())
    await bus.start()
    received: list[Message] = []
    confirmed = asyncio.Event()

    async def listen(delivery: Delivery) -> None:
        received.append(delivery.message)
        if delivery.message.event_type == "OrderConfirmed":
            confirmed.set()

    await bus.subscribe("orders", "listener", listen, dead_letters=Buried())
    app = orders_app(settings, upstreams)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://orders",
                headers=bearer("c-7"),
            ) as client,
        ):
            response = await client.post(
                "/orders",
                json=order_body((SAFFRON.product_id, 1)),
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )
            assert response.status_code == 201, response.text
            async with asyncio.timeout(10):
                await confirmed.wait()
    finally:
        await bus.close()

    order_id = response.json()["id"]
    assert [(m.event_type, m.schema_version, m.key) for m in received] == [
        ("OrderPlaced", 4, order_id),
        ("OrderConfirmed", 1, order_id),
    ]
    placed = decode(received[0].event_type, received[0].schema_version, received[0].payload)
    assert isinstance(placed, OrderPlaced)
    assert placed.customer_id == "c-7"
