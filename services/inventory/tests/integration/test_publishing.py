"""The inventory's events reach the outbox in the transaction that stores the change, or not
at all."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select

from chassis.messaging import connect
from chassis.messaging.tables import outbox
from contracts.events import (
    ReservationCommitted,
    ReservationExpired,
    ReservationReleased,
    StockLine,
    StockReserved,
    decode,
)
from contracts.inventory.v1 import inventory_pb2 as pb
from inventory.domain.commands import (
    CommitReservation,
    ExpireReservations,
    ReleaseReservation,
    ReserveStock,
)
from inventory.domain.errors import OutOfStock
from inventory.domain.model import ReservationLine, StockItem
from inventory.service_layer.handlers import (
    commit_reservation,
    expire_reservations,
    release_reservation,
    reserve_stock,
)

if TYPE_CHECKING:
    from chassis import Database
    from chassis.messaging import DeadLetter, Delivery, Message
    from contracts.events import Event
    from inventory.adapters.unit_of_work import SqlAlchemyUnitOfWork
    from services.inventory.tests.integration.conftest import Replicas

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
SAFFRON = "SPC-SAFFRON-2G"
RUG = "RUG-ZANAFI-90X140"
LINES = (ReservationLine(SAFFRON, 2), ReservationLine(RUG, 1))


async def published(database: Database) -> list[tuple[str, Event]]:
    """The outbox's rows, oldest first, as (key, decoded event)."""
    async with database.sessionmaker() as session:
        rows = (await session.execute(select(outbox).order_by(outbox.c.id))).all()
    assert {row.topic for row in rows} <= {"stock"}
    return [(row.key, decode(row.event_type, row.schema_version, row.payload)) for row in rows]


@pytest.fixture
async def stocked(uow: SqlAlchemyUnitOfWork) -> None:
    async with uow:
        await uow.stock.add(StockItem(sku=SAFFRON, on_hand=10))
        await uow.stock.add(StockItem(sku=RUG, on_hand=3))
        await uow.commit()


async def reserve(uow: SqlAlchemyUnitOfWork, reservation_id: str = "order-1") -> None:
    await reserve_stock(ReserveStock(reservation_id, LINES, ttl_seconds=60), uow, lambda: NOW)


@pytest.mark.usefixtures("stocked")
async def test_a_reservation_and_its_event_are_stored_together(
    database: Database, uow: SqlAlchemyUnitOfWork
) -> None:
    await reserve(uow)

    [(key, event)] = await published(database)
    assert key == "order-1"
    assert event == StockReserved(
        reservation_id="order-1",
        lines=(StockLine(RUG, 1), StockLine(SAFFRON, 2)),
        expires_at="2026-11-25T10:01:00+00:00",
        occurred_at=event.occurred_at,
    )


@pytest.mark.usefixtures("stocked")
async def test_a_repeated_reservation_publishes_nothing_more(
    database: Database, uow: SqlAlchemyUnitOfWork
) -> None:
    await reserve(uow)
    await reserve(uow)

    assert len(await published(database)) == 1


@pytest.mark.usefixtures("stocked")
async def test_a_refused_reservation_publishes_nothing(
    database: Database, uow: SqlAlchemyUnitOfWork
) -> None:
    with pytest.raises(OutOfStock):
        await reserve_stock(ReserveStock("order-1", (ReservationLine(RUG, 4),)), uow, lambda: NOW)

    assert await published(database) == []


@pytest.mark.usefixtures("stocked")
async def test_commit_release_and_expiry_are_published_under_their_reservation(
    database: Database, uow: SqlAlchemyUnitOfWork
) -> None:
    for reservation_id in ("order-1", "order-2", "order-3"):
        await reserve(uow, reservation_id)

    await commit_reservation(CommitReservation("order-1"), uow, lambda: NOW)
    await commit_reservation(CommitReservation("order-1"), uow, lambda: NOW)  # a repeat
    await release_reservation(ReleaseReservation("order-2"), uow)
    later = NOW + timedelta(minutes=5)
    assert await expire_reservations(ExpireReservations(), uow, lambda: later) == 1

    events = [(key, type(event)) for key, event in await published(database)][3:]
    assert events == [
        ("order-1", ReservationCommitted),
        ("order-2", ReservationReleased),
        ("order-3", ReservationExpired),
    ]


@pytest.mark.usefixtures("stocked")
async def test_a_transaction_left_without_commit_leaves_no_outbox_row(
    database: Database, uow: SqlAlchemyUnitOfWork
) -> None:
    await reserve(uow)

    async def release_then_crash() -> None:
        async with uow:
            reservation = await uow.reservations.get("order-1")
            assert reservation is not None
            stock = await uow.stock.get_many([SAFFRON, RUG])
            reservation.release(stock)
            await uow.reservations.save(reservation)
            raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError, match="crash"):
        await release_then_crash()

    async with uow:
        reservation = await uow.reservations.get("order-1")
    assert reservation is not None
    assert reservation.status == "reserved"
    assert [type(event) for _, event in await published(database)] == [StockReserved]


class Buried:
    """A dead-letter sink for a test's listener, which never fails."""

    async def bury(self, dead_letter: DeadLetter) -> None:
        raise AssertionError(f"the listener failed: {dead_letter.error}")


async def test_the_app_relays_its_outbox_to_the_bus(inventory: Replicas) -> None:
    settings = inventory.apps[0].state.settings
    bus = connect(settings.broker_url_or_default())
    await bus.start()
    received: list[Message] = []
    committed = asyncio.Event()

    async def listen(delivery: Delivery) -> None:
        received.append(delivery.message)
        if delivery.message.event_type == "ReservationCommitted":
            committed.set()

    try:
        await bus.subscribe("stock", "listener", listen, dead_letters=Buried())
        lines = [pb.ReservationLine(sku=SAFFRON, quantity=2)]
        await inventory.stub.Reserve(pb.ReserveRequest(reservation_id="order-9", lines=lines))
        await inventory.stub.Commit(pb.ReservationRef(reservation_id="order-9"))
        async with asyncio.timeout(10):
            await committed.wait()
    finally:
        await bus.close()

    assert [(m.event_type, m.key) for m in received] == [
        ("StockReserved", "order-9"),
        ("ReservationCommitted", "order-9"),
    ]
