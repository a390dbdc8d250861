"""Orders as event streams on a real SQLite database: state rebuilt from events, snapshots,
the outbox fed by the stream, optimistic concurrency, and the migration of older orders."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import pytest
from alembic import command
from sqlalchemy import select, text

from chassis import Database
from chassis.eventstore.tables import events, snapshots
from chassis.messaging.tables import outbox
from orders.adapters.orm import order_card_tokens
from orders.adapters.unit_of_work import SqlAlchemyUnitOfWork
from orders.app import MIGRATIONS
from orders.domain.commands import CancelOrder, RequestedItem
from orders.domain.errors import StaleOrder
from orders.domain.model import Order, OrderStatus, StepDone
from orders.domain.saga import Outcome, Step
from orders.service_layer.handlers import cancel_order
from services.orders.tests.conftest import GOOD_CARD, SAFFRON, TEA

if TYPE_CHECKING:
    from pathlib import Path

AT = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
PRODUCTS = {SAFFRON.product_id: SAFFRON, TEA.product_id: TEA}


def state(order: Order) -> dict[str, Any]:
    """Everything a reader of the order sees."""
    return {
        "customer_id": order.customer_id,
        "lines": order.lines,
        "status": order.status,
        "reason": order.reason,
        "last_error": order.last_error,
        "payment_id": order.payment_id,
        "step_in_progress": order.step_in_progress,
        "step_deadline": order.step_deadline,
        "steps": order.steps,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
        "version": order.version,
        "settled": order.settled,
    }


async def placed(uow: SqlAlchemyUnitOfWork) -> Order:
    order = Order.place(
        customer_id="c-1",
        items=[RequestedItem(SAFFRON.product_id, 2), RequestedItem(TEA.product_id, 1)],
        card_token=GOOD_CARD,
        at=AT,
    )
    order.advance(AT)
    async with uow:
        await uow.orders.add(order)
        await uow.commit()
    return order


async def step(uow: SqlAlchemyUnitOfWork, order_id: str, done: StepDone) -> Order:
    """The step recorded done and the saga moved on, as the saga's handler does."""
    async with uow:
        order = await uow.orders.get(order_id)
        assert order is not None
        order.record_done(done, AT)
        order.advance(AT)
        await uow.orders.save(order)
        await uow.commit()
    return order


async def confirmed(uow: SqlAlchemyUnitOfWork) -> Order:
    order = await placed(uow)
    await step(uow, order.id, StepDone(Step.PRICE, products=PRODUCTS))
    await step(uow, order.id, StepDone(Step.RESERVE_STOCK))
    await step(uow, order.id, StepDone(Step.AUTHORIZE_PAYMENT, payment_id="pay-1"))
    await step(uow, order.id, StepDone(Step.CAPTURE_PAYMENT))
    return await step(uow, order.id, StepDone(Step.COMMIT_STOCK))


async def test_a_confirmed_order_is_rebuilt_from_its_snapshot_as_from_all_its_events(
    database: Database, uow: SqlAlchemyUnitOfWork
) -> None:
    live = await confirmed(uow)

    async with uow:
        loaded = await uow.orders.get(live.id)
        replayed = await uow.orders.replay(live.id)
    async with database.sessionmaker() as session:
        taken = (await session.execute(select(snapshots.c.version))).scalars().all()

    assert loaded is not None
    assert live.status is OrderStatus.CONFIRMED
    # Placed; begun, (priced,) recorded for each of five steps; confirmed: 13 events. The
    # save that took the stream past 10 (the capture's, to 11) took the snapshot.
    assert live.version == 13
    assert taken == [11]
    assert state(loaded) == state(replayed) == state(live)


async def test_without_snapshots_the_order_is_folded_from_every_event(
    database: Database,
) -> None:
    plain = SqlAlchemyUnitOfWork(database.sessionmaker, snapshot_every=0)
    live = await confirmed(plain)

    async with plain:
        loaded = await plain.orders.get(live.id)
    async with database.sessionmaker() as session:
        taken = (await session.execute(select(snapshots.c.version))).scalars().all()

    assert loaded is not None
    assert taken == []
    assert state(loaded) == state(live)


async def test_the_outbox_holds_exactly_the_streams_published_events_and_commands(
    database: Database, uow: SqlAlchemyUnitOfWork
) -> None:
    order = await confirmed(uow)

    async with database.sessionmaker() as session:
        stream = (
            await session.execute(select(events).where(events.c.stream_id == f"order-{order.id}"))
        ).all()
        sent = (await session.execute(select(outbox).order_by(outbox.c.id))).all()

    on_orders = [r for r in sent if r.topic == "orders"]
    published = [e for e in stream if e.event_type in {"OrderPlaced", "OrderConfirmed"}]
    assert [(r.message_id, r.event_type) for r in on_orders] == [
        (e.event_id, e.event_type) for e in published
    ]
    assert [json.loads(r.payload) for r in on_orders] == [e.data for e in published]
    begun = [e for e in stream if e.event_type == "CheckoutStepBegun"]
    commands = [r for r in sent if r.topic == "checkout"]
    assert [r.message_id for r in commands] == [e.event_id for e in begun]
    assert [json.loads(r.payload)["step"] for r in commands] == [
        "price",
        "reserve-stock",
        "authorize-payment",
        "capture-payment",
        "commit-stock",
    ]


async def test_of_two_writers_of_one_version_the_second_stores_nothing(
    database: Database, uow: SqlAlchemyUnitOfWork
) -> None:
    order = await placed(uow)
    late = SqlAlchemyUnitOfWork(database.sessionmaker)

    async with late:
        stale = await late.orders.get(order.id)
        assert stale is not None
        await cancel_order(CancelOrder(order.id, "c-1"), uow)
        stale.record_done(StepDone(Step.PRICE, products=PRODUCTS), AT)
        with pytest.raises(StaleOrder):
            await late.orders.save(stale)

    async with uow:
        current = await uow.orders.get(order.id)
    assert current is not None
    assert current.status is OrderStatus.CANCELLED
    assert not current.has_done(Step.PRICE)


async def test_the_card_token_is_kept_beside_the_stream_until_the_payment_is_authorized(
    database: Database, uow: SqlAlchemyUnitOfWork
) -> None:
    order = await placed(uow)
    await step(uow, order.id, StepDone(Step.PRICE, products=PRODUCTS))
    await step(uow, order.id, StepDone(Step.RESERVE_STOCK))
    async with uow:
        before = await uow.orders.get(order.id)

    await step(uow, order.id, StepDone(Step.AUTHORIZE_PAYMENT, payment_id="pay-1"))

    async with uow:
        after = await uow.orders.get(order.id)
    async with database.sessionmaker() as session:
        tokens = (await session.execute(select(order_card_tokens))).all()
        stored = (await session.execute(select(events.c.data))).scalars().all()
    assert before is not None
    assert after is not None
    assert (before.card_token, after.card_token, tokens) == (GOOD_CARD, "", [])
    assert all(GOOD_CARD not in json.dumps(data) for data in stored)


async def test_orders_stored_before_event_sourcing_carry_on_from_where_they_were(
    tmp_path: Path,
) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'orders.db'}", migrations=MIGRATIONS)
    async with database.engine.begin() as connection:
        await connection.run_sync(_upgrade_to, database, "0003")
        await connection.execute(
            text(
                "INSERT INTO orders (id, customer_id, status, card_token, reason, last_error, "
                "payment_id, step_in_progress, step_deadline, settled, created_at, updated_at, "
                "version) VALUES ('o-1', 'c-1', 'PENDING', 'tok_ok', NULL, NULL, NULL, "
                "'reserve-stock', NULL, 0, '2026-11-20 10:00:00', '2026-11-20 10:01:00', 3)"
            )
        )
        await connection.execute(
            text(
                "INSERT INTO order_lines VALUES ('o-1', 0, :product, 2, :sku, :name, 1490, 'EUR')"
            ),
            {"product": SAFFRON.product_id, "sku": SAFFRON.sku, "name": SAFFRON.name},
        )
        await connection.execute(
            text(
                "INSERT INTO checkout_steps VALUES "
                "('o-1', 0, 'price', 'done', '2026-11-20 10:00:30', 'total 29.80 EUR')"
            )
        )
    await database.migrate()
    uow = SqlAlchemyUnitOfWork(database.sessionmaker)
    try:
        async with uow:
            order = await uow.orders.get("o-1")
        saga = partial(step, uow, "o-1")
        assert order is not None
        assert (order.status, order.step_in_progress, order.card_token) == (
            OrderStatus.PENDING,
            Step.RESERVE_STOCK,
            "tok_ok",
        )
        assert order.lines[0].unit_price == SAFFRON.price
        assert [(r.step, r.outcome) for r in order.steps] == [(Step.PRICE, Outcome.DONE)]
        assert order.created_at == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
        assert order.version == 1

        moved_on = await saga(StepDone(Step.RESERVE_STOCK))
        assert moved_on.step_in_progress is Step.AUTHORIZE_PAYMENT
    finally:
        await database.dispose()


def _upgrade_to(connection: Any, database: Database, revision: str) -> None:
    config = database._alembic_config(connection)
    command.upgrade(config, revision)
