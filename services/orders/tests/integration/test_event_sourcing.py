"""Orders as event streams on SQLite and PostgreSQL: state rebuilt from events, snapshots,
the outbox fed by the stream, optimistic concurrency, and the migration of older orders."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import select

from chassis import Database
from chassis.eventstore.tables import events, snapshots
from chassis.messaging.tables import outbox
from orders.adapters.orm import order_card_tokens
from orders.adapters.unit_of_work import SqlAlchemyUnitOfWork
from orders.app import MIGRATIONS
from orders.domain.commands import CancelOrder, RequestedItem
from orders.domain.errors import IdempotencyKeyTaken, StaleOrder
from orders.domain.model import Order, OrderStatus, StepDone
from orders.domain.saga_definition import Outcome, Step
from orders.service_layer.handlers import cancel_order
from orders.service_layer.ports import IdempotencyRecord
from orders.service_layer.saga_handler import restart_stalled
from services.orders.tests.conftest import GOOD_CARD, SAFFRON, TEA
from souk.testing import scratch_database

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

AT = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database: a SQLite file, or a scratch database on the local PostgreSQL."""
    async with scratch_database(request.param, tmp_path, "orders") as url:
        yield url


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, migrations=MIGRATIONS)
    await database.migrate()
    yield database
    await database.dispose()


@pytest.fixture
def uow(database: Database) -> SqlAlchemyUnitOfWork:
    return SqlAlchemyUnitOfWork(database.sessionmaker)


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


_OLD_ORDERS = sa.table(
    "orders",
    *(sa.column(c, sa.String) for c in ("id", "customer_id", "status", "card_token")),
    *(sa.column(c, sa.String) for c in ("reason", "last_error", "payment_id")),
    sa.column("step_in_progress", sa.String),
    sa.column("step_deadline", sa.DateTime(timezone=True)),
    sa.column("settled", sa.Boolean),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
    sa.column("version", sa.Integer),
)
_OLD_LINES = sa.table(
    "order_lines",
    *(sa.column(c) for c in ("order_id", "position", "product_id", "quantity", "sku", "name")),
    *(sa.column(c) for c in ("unit_price_amount", "unit_price_currency")),
)
_OLD_STEPS = sa.table(
    "checkout_steps",
    *(sa.column(c) for c in ("order_id", "position", "step", "outcome", "detail")),
    sa.column("at", sa.DateTime(timezone=True)),
)
_OLD_KEYS = sa.table(
    "idempotency_keys",
    *(sa.column(c) for c in ("key", "request_fingerprint", "order_id")),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


async def test_orders_stored_before_event_sourcing_carry_on_from_where_they_were(
    database_url: str,
) -> None:
    database = Database(database_url, migrations=MIGRATIONS)
    placed_at = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    async with database.engine.begin() as connection:
        await connection.run_sync(_upgrade_to, database, "0003")
        await connection.execute(
            sa.insert(_OLD_ORDERS).values(
                id="o-1",
                customer_id="c-1",
                status="PENDING",
                card_token=GOOD_CARD,
                step_in_progress="reserve-stock",
                settled=False,
                created_at=placed_at,
                updated_at=placed_at,
                version=3,
            )
        )
        await connection.execute(
            sa.insert(_OLD_LINES).values(
                order_id="o-1",
                position=0,
                product_id=SAFFRON.product_id,
                quantity=2,
                sku=SAFFRON.sku,
                name=SAFFRON.name,
                unit_price_amount=1490,
                unit_price_currency="EUR",
            )
        )
        await connection.execute(
            sa.insert(_OLD_STEPS).values(
                order_id="o-1", position=0, step="price", outcome="done", detail="", at=placed_at
            )
        )
        await connection.execute(
            sa.insert(_OLD_KEYS).values(
                key="k-1", request_fingerprint="f" * 64, order_id="o-1", created_at=placed_at
            )
        )
    await database.migrate()
    uow = SqlAlchemyUnitOfWork(database.sessionmaker)
    try:
        async with uow:
            order = await uow.orders.get("o-1")
            key = await uow.idempotency_keys.get("k-1")
        assert order is not None
        # The reservation the in-process checkout had begun is in doubt: begun again.
        assert (order.status, order.step_in_progress, order.card_token) == (
            OrderStatus.PENDING,
            None,
            GOOD_CARD,
        )
        assert order.lines[0].unit_price == SAFFRON.price
        assert [(r.step, r.outcome) for r in order.steps] == [(Step.PRICE, Outcome.DONE)]
        assert (order.created_at, order.version) == (placed_at, 1)
        assert key is not None
        assert key.order_id == "o-1"

        assert (
            await restart_stalled(partial(SqlAlchemyUnitOfWork, database.sessionmaker), at=AT) == 1
        )
        async with database.sessionmaker() as session:
            sent = (await session.execute(select(outbox.c.topic, outbox.c.payload))).all()
        assert [(topic, json.loads(payload)) for topic, payload in sent] == [
            ("checkout", {"order_id": "o-1", "step": "reserve-stock"})
        ]
        moved_on = await step(uow, "o-1", StepDone(Step.RESERVE_STOCK))
        assert moved_on.step_in_progress is Step.AUTHORIZE_PAYMENT
    finally:
        await database.dispose()


def _upgrade_to(connection: Any, database: Database, revision: str) -> None:
    config = database._alembic_config(connection)
    command.upgrade(config, revision)


async def test_an_older_order_cancelled_while_a_step_was_out_has_that_steps_effect_undone(
    database_url: str,
) -> None:
    # The in-process checkout let a customer cancel while a step was out (its call under
    # way): the authorization may have been made, and must be voided like a done one.
    database = Database(database_url, migrations=MIGRATIONS)
    placed_at = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    async with database.engine.begin() as connection:
        await connection.run_sync(_upgrade_to, database, "0003")
        await connection.execute(
            sa.insert(_OLD_ORDERS).values(
                id="o-2",
                customer_id="c-1",
                status="CANCELLED",
                card_token=GOOD_CARD,
                reason="cancelled by the customer",
                step_in_progress="authorize-payment",
                settled=False,
                created_at=placed_at,
                updated_at=placed_at,
                version=4,
            )
        )
        await connection.execute(
            sa.insert(_OLD_LINES).values(
                order_id="o-2",
                position=0,
                product_id=SAFFRON.product_id,
                quantity=2,
                sku=SAFFRON.sku,
                name=SAFFRON.name,
                unit_price_amount=1490,
                unit_price_currency="EUR",
            )
        )
        for position, done in enumerate(("price", "reserve-stock")):
            await connection.execute(
                sa.insert(_OLD_STEPS).values(
                    order_id="o-2",
                    position=position,
                    step=done,
                    outcome="done",
                    detail="",
                    at=placed_at,
                )
            )
    await database.migrate()
    uow = SqlAlchemyUnitOfWork(database.sessionmaker)
    try:
        async with uow:
            order = await uow.orders.get("o-2")
        assert order is not None
        assert order.status is OrderStatus.CANCELLED
        assert order.compensations_due() == [Step.VOID_PAYMENT, Step.RELEASE_STOCK]
        assert order.steps[-1].step is Step.AUTHORIZE_PAYMENT
        assert order.steps[-1].outcome is Outcome.TIMED_OUT

        assert (
            await restart_stalled(partial(SqlAlchemyUnitOfWork, database.sessionmaker), at=AT) == 1
        )
        async with database.sessionmaker() as session:
            sent = (await session.execute(select(outbox.c.topic, outbox.c.payload))).all()
        assert [(topic, json.loads(payload)) for topic, payload in sent] == [
            ("checkout", {"order_id": "o-2", "step": "void-payment"})
        ]
    finally:
        await database.dispose()


async def test_the_card_token_is_forgotten_once_an_order_settles_without_a_payment(
    database: Database, uow: SqlAlchemyUnitOfWork
) -> None:
    order = await placed(uow)
    await cancel_order(CancelOrder(order.id, "c-1"), uow)
    async with database.sessionmaker() as session:
        while_pricing = (await session.execute(select(order_card_tokens))).all()

    settled = await step(uow, order.id, StepDone(Step.PRICE, products=PRODUCTS))

    async with database.sessionmaker() as session:
        tokens = (await session.execute(select(order_card_tokens))).all()
    assert len(while_pricing) == 1
    assert settled.settled
    assert tokens == []


async def test_older_settled_orders_leave_their_card_tokens_behind(database_url: str) -> None:
    database = Database(database_url, migrations=MIGRATIONS)
    placed_at = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    async with database.engine.begin() as connection:
        await connection.run_sync(_upgrade_to, database, "0003")
        await connection.execute(
            sa.insert(_OLD_ORDERS).values(
                id="o-3",
                customer_id="c-1",
                status="REJECTED",
                card_token=GOOD_CARD,
                reason="out of stock",
                settled=True,
                created_at=placed_at,
                updated_at=placed_at,
                version=3,
            )
        )
    await database.migrate()
    try:
        async with database.sessionmaker() as session:
            tokens = (await session.execute(select(order_card_tokens))).all()
        assert tokens == []
    finally:
        await database.dispose()


_KEYS_BEFORE_THE_CHASSIS_STORE = sa.table(
    "idempotency_keys",
    *(sa.column(c) for c in ("key", "request_fingerprint", "order_id")),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
_ORDER_INDEX = sa.table(
    "orders",
    *(sa.column(c, sa.String) for c in ("id", "customer_id", "status")),
    sa.column("settled", sa.Boolean),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
    sa.column("version", sa.Integer),
)


async def test_idempotency_keys_stored_before_the_chassis_store_still_answer(
    database_url: str,
) -> None:
    database = Database(database_url, migrations=MIGRATIONS)
    placed_at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    old_key = "k" * 128  # the longest key the rule allowed then
    async with database.engine.begin() as connection:
        await connection.run_sync(_upgrade_to, database, "0004")
        await connection.execute(
            sa.insert(_ORDER_INDEX).values(
                id="o-1",
                customer_id="c-1",
                status="CONFIRMED",
                settled=True,
                created_at=placed_at,
                updated_at=placed_at,
                version=9,
            )
        )
        await connection.execute(
            sa.insert(_KEYS_BEFORE_THE_CHASSIS_STORE).values(
                key=old_key, request_fingerprint="f" * 64, order_id="o-1", created_at=placed_at
            )
        )
    await database.migrate()
    uow = SqlAlchemyUnitOfWork(database.sessionmaker)
    longer = "x" * 255  # what billing's keys could be: one column width for both now
    try:
        async with uow:
            kept = await uow.idempotency_keys.get(old_key)
            await uow.idempotency_keys.add(IdempotencyRecord(longer, "e" * 64, "o-1", AT))
            await uow.commit()
        async with uow:
            with pytest.raises(IdempotencyKeyTaken):
                await uow.idempotency_keys.add(IdempotencyRecord(old_key, "d" * 64, "o-1", AT))
        async with uow:
            added = await uow.idempotency_keys.get(longer)
    finally:
        await database.dispose()

    assert kept == IdempotencyRecord(old_key, "f" * 64, "o-1", placed_at)
    assert added == IdempotencyRecord(longer, "e" * 64, "o-1", AT)
