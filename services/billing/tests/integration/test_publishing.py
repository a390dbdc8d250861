"""Billing's events reach the outbox in the transaction that stores the payment, or not at all."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select

from billing.domain.commands import AuthorizePayment, CapturePayment, RefundPayment, VoidPayment
from billing.service_layer.handlers import (
    authorize_payment,
    capture_payment,
    refund_payment,
    void_payment,
)
from chassis.messaging import connect
from chassis.messaging.tables import outbox
from contracts import Money
from contracts.events import (
    PaymentAuthorized,
    PaymentCaptured,
    PaymentDeclined,
    PaymentRefunded,
    PaymentVoided,
    decode,
)
from services.billing.tests.unit.conftest import ACCEPTED_CARD, LEASE
from services.billing.tests.unit.fakes import DECLINING_CARD, FakeProvider

if TYPE_CHECKING:
    import httpx

    from billing.adapters.unit_of_work import SqlAlchemyUnitOfWork
    from billing.settings import BillingSettings
    from chassis import Database
    from chassis.messaging import DeadLetter, Delivery, Message
    from contracts.events import Event

COMMAND = AuthorizePayment(
    order_id="order-1",
    amount=Money(5990, "EUR"),
    card_token=ACCEPTED_CARD,
    idempotency_key="key-1",
    customer_id="customer-7",
)


async def published(database: Database) -> list[tuple[str, Event]]:
    """The outbox's rows, oldest first, as (key, decoded event)."""
    async with database.sessionmaker() as session:
        rows = (await session.execute(select(outbox).order_by(outbox.c.id))).all()
    assert {row.topic for row in rows} <= {"payments"}
    return [(row.key, decode(row.event_type, row.schema_version, row.payload)) for row in rows]


@pytest.fixture
def fakes() -> list[FakeProvider]:
    """Providers that approve every card but the declining one, with no server behind them."""
    return [FakeProvider("payment-primary"), FakeProvider("payment-backup")]


async def test_an_authorized_payment_and_its_event_are_stored_together(
    database: Database, uow: SqlAlchemyUnitOfWork, fakes: list[FakeProvider]
) -> None:
    outcome = await authorize_payment(COMMAND, uow, fakes, lease=LEASE)

    [(key, event)] = await published(database)
    assert key == "order-1"
    assert event == PaymentAuthorized(
        payment_id=outcome.payment.id,
        order_id="order-1",
        amount=Money(5990, "EUR"),
        provider="payment-primary",
        occurred_at=event.occurred_at,
        customer_id="customer-7",
    )


async def test_a_decline_is_published_with_its_reason_and_customer(
    database: Database, uow: SqlAlchemyUnitOfWork, fakes: list[FakeProvider]
) -> None:
    command = dataclasses.replace(COMMAND, card_token=DECLINING_CARD)
    await authorize_payment(command, uow, fakes, lease=LEASE)

    [(_, event)] = await published(database)
    assert isinstance(event, PaymentDeclined)
    assert (event.reason, event.customer_id, event.amount) == (
        "card_declined",
        "customer-7",
        Money(5990, "EUR"),
    )


async def test_a_payment_without_a_customer_is_published_without_one(
    database: Database, uow: SqlAlchemyUnitOfWork, fakes: list[FakeProvider]
) -> None:
    await authorize_payment(dataclasses.replace(COMMAND, customer_id=None), uow, fakes, lease=LEASE)

    [(_, event)] = await published(database)
    assert isinstance(event, PaymentAuthorized)
    assert event.customer_id is None


async def test_each_settlement_is_published_once_under_the_order(
    database: Database, uow: SqlAlchemyUnitOfWork, fakes: list[FakeProvider]
) -> None:
    captured = (await authorize_payment(COMMAND, uow, fakes, lease=LEASE)).payment
    voided = (
        await authorize_payment(
            dataclasses.replace(COMMAND, order_id="order-2", idempotency_key="key-2"),
            uow,
            fakes,
            lease=LEASE,
        )
    ).payment

    await capture_payment(CapturePayment(captured.id), uow, fakes)
    await capture_payment(CapturePayment(captured.id), uow, fakes)  # a repeat: no event
    await refund_payment(RefundPayment(captured.id), uow, fakes)
    await void_payment(VoidPayment(voided.id), uow, fakes)

    events = [(key, type(event)) for key, event in await published(database)]
    assert events == [
        ("order-1", PaymentAuthorized),
        ("order-2", PaymentAuthorized),
        ("order-1", PaymentCaptured),
        ("order-1", PaymentRefunded),
        ("order-2", PaymentVoided),
    ]
    voided_event = (await published(database))[-1][1]
    assert isinstance(voided_event, PaymentVoided)
    assert (voided_event.amount, voided_event.customer_id) == (Money(5990, "EUR"), "customer-7")


async def test_a_transaction_left_without_commit_leaves_no_outbox_row(
    database: Database, uow: SqlAlchemyUnitOfWork, fakes: list[FakeProvider]
) -> None:
    payment = (await authorize_payment(COMMAND, uow, fakes, lease=LEASE)).payment

    async def capture_then_crash() -> None:
        async with uow:
            loaded = await uow.payments.get(payment.id)
            assert loaded is not None
            loaded.capture()
            await uow.payments.save(loaded)
            raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError, match="crash"):
        await capture_then_crash()

    async with uow:
        stored = await uow.payments.get(payment.id)
    assert stored is not None
    assert stored.status == "AUTHORIZED"
    assert [type(event) for _, event in await published(database)] == [PaymentAuthorized]


class Buried:
    """A dead-letter sink for a test's listener, which never fails."""

    async def bury(self, dead_letter: DeadLetter) -> None:
        raise AssertionError(f"the listener failed: {dead_letter.error}")


async def test_the_app_relays_its_outbox_to_the_bus(
    settings: BillingSettings, billing: httpx.AsyncClient
) -> None:
    bus = connect(settings.broker_url_or_default())
    await bus.start()
    received: list[Message] = []
    captured = asyncio.Event()

    async def listen(delivery: Delivery) -> None:
        received.append(delivery.message)
        if delivery.message.event_type == "PaymentCaptured":
            captured.set()

    try:
        await bus.subscribe("payments", "listener", listen, dead_letters=Buried())
        paid = await billing.post(
            "/payments",
            json={
                "order_id": "order-1",
                "customer_id": "customer-7",
                "amount": {"amount": 5990, "currency": "EUR"},
                "card_token": ACCEPTED_CARD,
            },
            headers={"Idempotency-Key": "key-1"},
        )
        assert paid.status_code == 201, paid.text
        await billing.post(f"/payments/{paid.json()['id']}/capture")
        async with asyncio.timeout(30):
            await captured.wait()
    finally:
        await bus.close()

    # At-least-once: a message may come twice (its consumers' inboxes absorb that), never
    # out of order and never not at all.
    firsts: list[Message] = []
    for message in received:
        if all(first.message_id != message.message_id for first in firsts):
            firsts.append(message)
    assert [(m.event_type, m.key) for m in firsts] == [
        ("PaymentAuthorized", "order-1"),
        ("PaymentCaptured", "order-1"),
    ]
    event = decode(received[1].event_type, received[1].schema_version, received[1].payload)
    assert isinstance(event, PaymentCaptured)
    assert (event.customer_id, event.amount) == ("customer-7", Money(5990, "EUR"))
