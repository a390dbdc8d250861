"""The saga's commands: one out per unsettled order, stale and repeated ones change nothing,
and a step that never answers is timed out, its possible effect undone."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from chassis.messaging.message import Message
from orders.domain.commands import RunStep
from orders.domain.errors import StaleOrder
from orders.domain.model import OrderStatus, Outcome
from orders.domain.saga_definition import CHECKOUT_SAGA, Step
from orders.entrypoints.saga_consumer import command_of
from orders.service_layer.saga_handler import MAX_CONFLICTS, StepUnfinished, restart_stalled
from services.orders.tests.conftest import DECLINED_CARD, SAFFRON, TEA, unavailable
from services.orders.tests.unit.conftest import receipt_for
from services.orders.tests.unit.fakes import FakeOrderRepository, FakeUnitOfWork, command_message

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from orders.domain.model import Order
    from orders.service_layer.saga_handler import CheckoutSaga
    from services.orders.tests.conftest import FakeBilling, FakeCatalog, FakeInventory
    from services.orders.tests.unit.fakes import Clock, FakeStore

    Place = Callable[..., Awaitable[str]]
    Drive = Callable[[str], Awaitable[Order]]


def steps_sent(store: FakeStore) -> list[tuple[str, str]]:
    return [(c.order_id, str(c.step)) for c in map(command_of, store.commands)]


def past_deadline(clock: Clock, step: Step) -> None:
    clock.now += CHECKOUT_SAGA.stage(step).timeout + timedelta(seconds=1)


async def test_placing_an_order_sends_the_first_step_with_it(
    place: Place, store: FakeStore
) -> None:
    order_id = await place((TEA.product_id, 1))

    assert steps_sent(store) == [(order_id, "price")]
    assert store.orders[order_id].step_in_progress is Step.PRICE


async def test_each_step_done_sends_the_next_until_the_order_is_confirmed(
    place: Place, store: FakeStore, saga: CheckoutSaga
) -> None:
    order_id = await place((TEA.product_id, 1))
    sent = []
    while store.commands:
        message = store.commands.pop(0)
        sent.append(command_of(message).step)
        await saga.handle(command_of(message), receipt_for(message))

    assert sent == list(CHECKOUT_SAGA.steps)
    assert store.orders[order_id].status is OrderStatus.CONFIRMED


async def test_a_command_handled_already_is_acknowledged_without_calling_anyone(
    place: Place, store: FakeStore, saga: CheckoutSaga, inventory: FakeInventory
) -> None:
    order_id = await place((TEA.product_id, 1))
    price = store.commands.pop(0)
    await saga.handle(command_of(price), receipt_for(price))
    reserve = store.commands.pop(0)
    await saga.handle(command_of(reserve), receipt_for(reserve))
    version = store.orders[order_id].version

    await saga.handle(command_of(reserve), receipt_for(reserve))

    assert inventory.count("reserve") == 1
    assert store.orders[order_id].version == version
    assert steps_sent(store) == [(order_id, "authorize-payment")]


async def test_a_command_for_a_step_no_longer_out_is_stale_and_changes_nothing(
    place: Place, drive: Drive, store: FakeStore, saga: CheckoutSaga, billing: FakeBilling
) -> None:
    order_id = await place((TEA.product_id, 1))
    await drive(order_id)
    stale = command_message(RunStep(order_id, Step.CAPTURE_PAYMENT), message_id="m-1")

    await saga.handle(command_of(stale), receipt_for(stale))

    assert billing.count("capture") == 1
    assert store.orders[order_id].status is OrderStatus.CONFIRMED
    assert stale.message_id in store.handled
    assert store.commands == []


async def test_a_step_unanswered_past_its_deadline_rejects_the_order_and_undoes_it(
    place: Place,
    drive: Drive,
    clock: Clock,
    inventory: FakeInventory,
    billing: FakeBilling,
) -> None:
    order_id = await place((SAFFRON.product_id, 2))
    inventory.fail("reserve", *(unavailable("inventory") for _ in range(3)), after_effect=True)
    pending = await drive(order_id)
    assert (pending.status, pending.step_in_progress) == (
        OrderStatus.PENDING,
        Step.RESERVE_STOCK,
    )
    past_deadline(clock, Step.RESERVE_STOCK)

    order = await drive(order_id)

    assert (order.status, order.reason) == (
        OrderStatus.REJECTED,
        "reserve-stock got no answer in 30 s",
    )
    # The reservation the lost answers made is released; the step itself is not run again.
    assert inventory.count("reserve") == 3
    assert inventory.reservations[order_id].status == "RELEASED"
    assert inventory.available[SAFFRON.sku] == 10
    assert billing.calls == []
    assert [(str(r.step), str(r.outcome)) for r in order.steps][-2:] == [
        ("reserve-stock", "timed-out"),
        ("release-stock", "done"),
    ]
    assert order.settled


async def test_a_command_that_waited_in_the_queue_past_its_deadline_is_still_tried(
    place: Place, drive: Drive, clock: Clock
) -> None:
    # Head-of-line blocking: the order's first command sat behind others stuck on a frozen
    # dependency until after its deadline; the catalog it needs is healthy.
    order_id = await place((TEA.product_id, 1))
    past_deadline(clock, Step.PRICE)

    order = await drive(order_id)

    assert order.status is OrderStatus.CONFIRMED
    assert (str(order.steps[0].step), str(order.steps[0].outcome)) == ("price", "failed")
    assert "waited past its deadline" in order.steps[0].detail


async def test_a_step_first_tried_late_times_out_a_full_timeout_after_that_attempt(
    place: Place, drive: Drive, clock: Clock, catalog: FakeCatalog
) -> None:
    order_id = await place((TEA.product_id, 1))
    past_deadline(clock, Step.PRICE)
    catalog.fail("product", *(unavailable("catalog") for _ in range(3)))
    late = await drive(order_id)
    clock.now += timedelta(seconds=10)  # within the timeout counted from the late attempt

    still = await drive(order_id)  # catalog is back: the step was not timed out
    assert (late.status, still.status) == (OrderStatus.PENDING, OrderStatus.CONFIRMED)


async def test_a_step_first_tried_late_that_keeps_failing_is_timed_out(
    place: Place, drive: Drive, clock: Clock, catalog: FakeCatalog
) -> None:
    order_id = await place((TEA.product_id, 1))
    past_deadline(clock, Step.PRICE)
    catalog.fail("product", *(unavailable("catalog") for _ in range(3)))
    await drive(order_id)
    past_deadline(clock, Step.PRICE)

    order = await drive(order_id)

    assert (order.status, order.reason) == (OrderStatus.REJECTED, "price got no answer in 30 s")


async def test_an_authorization_timed_out_is_found_at_billing_and_voided(
    place: Place,
    drive: Drive,
    clock: Clock,
    inventory: FakeInventory,
    billing: FakeBilling,
) -> None:
    order_id = await place((TEA.product_id, 1))
    billing.fail("authorize", *(unavailable("billing") for _ in range(3)), after_effect=True)
    await drive(order_id)
    past_deadline(clock, Step.AUTHORIZE_PAYMENT)

    order = await drive(order_id)

    payment = billing.payment_of(order_id)
    assert payment is not None
    assert (order.status, order.payment_id, payment.status) == (
        OrderStatus.REJECTED,
        None,
        "VOIDED",
    )
    assert inventory.reservations[order_id].status == "RELEASED"
    assert order.settled


async def test_a_capture_in_doubt_timed_out_is_refunded_whether_it_was_taken_or_not(
    place: Place,
    drive: Drive,
    clock: Clock,
    inventory: FakeInventory,
    billing: FakeBilling,
) -> None:
    order_id = await place((TEA.product_id, 1))
    billing.fail("capture", *(unavailable("billing") for _ in range(3)), after_effect=True)
    await drive(order_id)
    past_deadline(clock, Step.CAPTURE_PAYMENT)

    order = await drive(order_id)

    payment = billing.payment_of(order_id)
    assert payment is not None
    assert (order.status, payment.status) == (OrderStatus.REJECTED, "REFUNDED")
    assert order.compensations_due() == []
    assert inventory.reservations[order_id].status == "RELEASED"


async def test_a_commit_in_doubt_timed_out_is_refunded_and_its_committed_stock_returned(
    place: Place,
    drive: Drive,
    clock: Clock,
    inventory: FakeInventory,
    billing: FakeBilling,
) -> None:
    order_id = await place((TEA.product_id, 1))
    inventory.fail("commit", *(unavailable("inventory") for _ in range(3)), after_effect=True)
    await drive(order_id)
    past_deadline(clock, Step.COMMIT_STOCK)

    order = await drive(order_id)

    payment = billing.payment_of(order_id)
    assert payment is not None
    assert (order.status, payment.status) == (OrderStatus.REJECTED, "REFUNDED")
    # The stock left the shelf with the commit: the rejected order brings it back, and
    # releasing it then ends without effect.
    assert inventory.reservations[order_id].status == "RETURNED"
    assert inventory.available[TEA.sku] == 5
    assert [(str(r.step), str(r.outcome)) for r in order.steps][-4:] == [
        ("commit-stock", "timed-out"),
        ("return-stock", "done"),
        ("refund-payment", "done"),
        ("release-stock", "done"),
    ]
    assert order.settled


async def test_a_compensation_has_no_deadline_and_is_tried_until_it_is_done(
    place: Place, drive: Drive, clock: Clock, inventory: FakeInventory
) -> None:
    order_id = await place((TEA.product_id, 1), card_token=DECLINED_CARD)
    inventory.fail("release", *(unavailable("inventory") for _ in range(3)))
    stuck = await drive(order_id)
    clock.now += timedelta(days=1)

    order = await drive(order_id)

    assert stuck.step_in_progress is Step.RELEASE_STOCK
    assert (order.status, order.settled) == (OrderStatus.REJECTED, True)
    assert inventory.reservations[order_id].status == "RELEASED"
    assert Outcome.TIMED_OUT not in {r.outcome for r in order.steps}


async def test_an_unanswered_step_raises_so_the_bus_delivers_its_command_again(
    place: Place, store: FakeStore, saga: CheckoutSaga, inventory: FakeInventory
) -> None:
    order_id = await place((TEA.product_id, 1))
    price = store.commands.pop(0)
    await saga.handle(command_of(price), receipt_for(price))
    inventory.fail("reserve", *(unavailable("inventory") for _ in range(3)))
    reserve = store.commands[0]

    with pytest.raises(StepUnfinished):
        await saga.handle(command_of(reserve), receipt_for(reserve))

    order = store.orders[order_id]
    assert order.last_error == "reserve-stock: inventory: connection refused"
    assert reserve.message_id not in store.handled


def test_a_command_survives_the_trip_through_the_bus() -> None:
    message = command_message(RunStep("order-1", Step.REFUND_PAYMENT), message_id="m-1")

    assert (message.topic, message.key, message.message_id) == ("checkout", "order-1", "m-1")
    assert command_of(message) == RunStep("order-1", Step.REFUND_PAYMENT)


def test_a_message_that_is_no_command_is_refused() -> None:
    message = Message(
        topic="checkout", key="order-1", event_type="OrderPlaced", schema_version=1, payload=b"{}"
    )

    with pytest.raises(ValueError, match="not a checkout command"):
        command_of(message)


async def test_at_start_up_an_unsettled_order_without_a_command_out_has_its_step_begun(
    place: Place, store: FakeStore, clock: Clock
) -> None:
    running = await place((TEA.product_id, 1))
    imported = await place((TEA.product_id, 1), key="key-2")
    # As migration 0004 imports an order the in-process checkout had begun: no step out.
    store.orders[imported].step_in_progress = None
    store.commands.clear()

    restarted = await restart_stalled(lambda: FakeUnitOfWork(store), at=clock.now)

    assert restarted == 1
    assert steps_sent(store) == [(imported, "price")]
    assert store.orders[running].step_in_progress is Step.PRICE


async def test_a_command_that_keeps_losing_races_gives_up_and_is_delivered_again(
    place: Place, store: FakeStore, saga: CheckoutSaga, monkeypatch: pytest.MonkeyPatch
) -> None:
    order_id = await place((TEA.product_id, 1))
    price = store.commands[0]
    saves = 0

    async def always_stale(self: FakeOrderRepository, order: Order) -> None:
        nonlocal saves
        saves += 1
        raise StaleOrder(order.id)

    monkeypatch.setattr(FakeOrderRepository, "save", always_stale)

    with pytest.raises(StaleOrder):
        await saga.handle(command_of(price), receipt_for(price))

    assert saves == MAX_CONFLICTS
    assert price.message_id not in store.handled
    assert store.orders[order_id].steps == []
