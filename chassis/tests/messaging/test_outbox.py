"""The transactional outbox: events commit with the state change and are relayed in order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from chassis import Database
from chassis.messaging import Message
from chassis.messaging.message import WRITTEN_AT
from chassis.messaging.outbox import OutboxRelay
from chassis.messaging.tables import outbox
from chassis.unit_of_work import SqlAlchemyUnitOfWork

from .databases import messaging_database
from .fakes import FakeBus
from .recording import eventually

shop = MetaData()
orders = Table("orders", shop, Column("id", String(20), primary_key=True), Column("n", Integer))


class OrdersUnitOfWork(SqlAlchemyUnitOfWork):
    def open_repositories(self, session: AsyncSession) -> None:
        self.session = session


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with messaging_database(request.param, tmp_path) as database:
        async with database.engine.begin() as connection:
            await connection.run_sync(shop.create_all)
        yield database


def placed(order_id: str, n: int = 0) -> Message:
    return Message(topic="orders", key=order_id, event_type="OrderPlaced", payload=f"{n}".encode())


async def place(database: Database, order_id: str, *, events: int = 1, commit: bool = True) -> None:
    async with OrdersUnitOfWork(database.sessionmaker) as uow:
        await uow.session.execute(insert(orders).values(id=order_id, n=events))
        for n in range(events):
            uow.outbox.add(placed(order_id, n))
        if commit:
            await uow.commit()


async def unsent(database: Database) -> int:
    async with database.sessionmaker() as session:
        query = select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
        return int((await session.execute(query)).scalar_one())


async def test_events_are_stored_with_the_state_change_and_only_if_it_commits(
    database: Database,
) -> None:
    await place(database, "o-1", events=2)
    await place(database, "o-2", events=3, commit=False)

    assert await unsent(database) == 2
    async with database.sessionmaker() as session:
        assert (await session.execute(select(orders.c.id))).scalars().all() == ["o-1"]


async def test_the_relay_publishes_in_the_order_written_and_marks_them_sent(
    database: Database,
) -> None:
    bus = FakeBus()
    for order in range(5):
        await place(database, f"o-{order}", events=3)
    relay = OutboxRelay(database.sessionmaker, bus, holder="orders-1", batch_size=4)

    while await relay.relay_once():
        pass

    assert [(m.key, m.payload) for m in bus.published] == [
        (f"o-{order}", f"{n}".encode()) for order in range(5) for n in range(3)
    ]
    assert await unsent(database) == 0


async def test_events_wait_in_the_outbox_while_the_broker_is_down(database: Database) -> None:
    bus = FakeBus(down=True)
    relay = OutboxRelay(database.sessionmaker, bus, holder="orders-1", poll_interval=0.05)
    relay.start()
    try:
        await place(database, "o-1", events=2)
        await asyncio.sleep(0.3)
        assert await unsent(database) == 2

        bus.down = False

        async def all_sent() -> bool:
            return await unsent(database) == 0

        await eventually(all_sent, within=10)
    finally:
        await relay.stop()
    assert [m.payload for m in bus.published] == [b"0", b"1"]


async def test_a_lost_confirm_means_publishing_again_never_losing(database: Database) -> None:
    bus = FakeBus(lose_confirms=True)
    await place(database, "o-1")
    relay = OutboxRelay(database.sessionmaker, bus, holder="orders-1")

    with pytest.raises(Exception, match="no confirm"):
        await relay.relay_once()
    bus.lose_confirms = False
    await relay.relay_once()

    ids = [m.message_id for m in bus.published]
    assert len(ids) == 2
    assert ids[0] == ids[1], "the same message, published twice"
    assert await unsent(database) == 0


async def test_a_commit_wakes_the_relay_without_waiting_for_its_poll(database: Database) -> None:
    bus = FakeBus()
    relay = OutboxRelay(database.sessionmaker, bus, holder="orders-1", poll_interval=60)
    relay.start()
    try:
        await asyncio.sleep(0.1)  # the relay has looked once and now waits a minute
        await place(database, "o-1")

        async def published() -> bool:
            return bool(bus.published)

        await eventually(published, within=5)
    finally:
        await relay.stop()


async def test_of_two_relays_on_one_database_only_the_lease_holder_publishes(
    database: Database,
) -> None:
    first_bus, second_bus = FakeBus(), FakeBus()
    first = OutboxRelay(database.sessionmaker, first_bus, holder="orders-1", lease_seconds=30)
    second = OutboxRelay(database.sessionmaker, second_bus, holder="orders-2", lease_seconds=30)
    await place(database, "o-1")
    assert await first.relay_once() == 1
    await place(database, "o-2")

    assert await second.relay_once() == 0
    assert await first.relay_once() == 1
    assert second_bus.published == []


async def test_a_relay_takes_over_when_the_holder_stops_renewing(database: Database) -> None:
    first = OutboxRelay(database.sessionmaker, FakeBus(), holder="orders-1", lease_seconds=0.2)
    second_bus = FakeBus()
    second = OutboxRelay(database.sessionmaker, second_bus, holder="orders-2", lease_seconds=0.2)
    await place(database, "o-1")
    await first.relay_once()
    await place(database, "o-2")

    await asyncio.sleep(0.3)  # orders-1 died holding the lease

    assert await second.relay_once() == 1
    assert [m.key for m in second_bus.published] == ["o-2"]


async def test_a_relay_that_lost_its_lease_publishes_nothing_more(database: Database) -> None:
    # The holder writes its lease only when half of it is gone: it must still notice, once
    # it comes back from a pause longer than the lease, that another relay took over.
    first_bus, second_bus = FakeBus(), FakeBus()
    first = OutboxRelay(database.sessionmaker, first_bus, holder="orders-1", lease_seconds=0.2)
    second = OutboxRelay(database.sessionmaker, second_bus, holder="orders-2", lease_seconds=30)
    await place(database, "o-1")
    assert await first.relay_once() == 1
    await asyncio.sleep(0.3)  # orders-1 paused past its lease
    await place(database, "o-2")
    assert await second.relay_once() == 1
    await place(database, "o-3")

    assert await first.relay_once() == 0
    assert [m.key for m in first_bus.published] == ["o-1"]
    assert await second.relay_once() == 1
    assert [m.key for m in second_bus.published] == ["o-2", "o-3"]


async def test_a_relay_holding_its_lease_relays_batch_after_batch_in_order(
    database: Database,
) -> None:
    bus = FakeBus()
    relay = OutboxRelay(database.sessionmaker, bus, holder="orders-1", batch_size=3)
    for n in range(8):
        await place(database, f"o-{n}")
    while await relay.relay_once():
        pass

    assert [m.key for m in bus.published] == [f"o-{n}" for n in range(8)]
    assert await unsent(database) == 0


async def test_the_trace_of_the_request_travels_with_the_event(database: Database) -> None:
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415

    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("POST /orders") as span:
        await place(database, "o-1")
    bus = FakeBus()
    await OutboxRelay(database.sessionmaker, bus, holder="orders-1").relay_once()

    trace_id = format(span.get_span_context().trace_id, "032x")
    assert bus.published[0].trace_context["traceparent"].split("-")[1] == trace_id


async def test_a_commit_during_a_relay_pass_is_relayed_without_waiting_for_the_poll(
    database: Database,
) -> None:
    bus = FakeBus()
    publishing, go_on = asyncio.Event(), asyncio.Event()
    publish = bus.publish

    async def slow_publish(messages: Sequence[Message]) -> None:
        publishing.set()
        await go_on.wait()
        await publish(messages)

    bus.publish = slow_publish  # type: ignore[method-assign]
    relay = OutboxRelay(database.sessionmaker, bus, holder="orders-1", poll_interval=60)
    await place(database, "o-1")
    relay.start()
    try:
        await asyncio.wait_for(publishing.wait(), 5)
        await place(database, "o-2")  # committed while the relay publishes o-1
        go_on.set()

        async def both_published() -> bool:
            return [m.key for m in bus.published] == ["o-1", "o-2"]

        await eventually(both_published, within=5)
    finally:
        await relay.stop()


async def test_a_published_message_says_when_the_outbox_wrote_it(database: Database) -> None:
    bus = FakeBus()
    before = time.time()
    await place(database, "o-1", events=1)
    relay = OutboxRelay(database.sessionmaker, bus, holder="orders-1")

    await relay.relay_once()

    [message] = bus.published
    assert message.written_at is not None
    assert before - 1 <= message.written_at <= time.time()
    assert Message.from_headers(message.topic, message.headers(), b"").written_at == pytest.approx(
        message.written_at, abs=1e-5
    )


def test_a_message_without_a_readable_written_at_is_still_a_message() -> None:
    headers = Message(topic="orders", key="o-1", event_type="OrderPlaced", payload=b"").headers()

    for unreadable in ("yesterday", "nan", "inf"):
        message = Message.from_headers("orders", {**headers, WRITTEN_AT: unreadable}, b"")
        assert message.written_at is None
        assert message.key == "o-1"
