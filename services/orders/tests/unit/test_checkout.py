"""The saga takes an order through its steps, one command on the bus at a time, and undoes
them when it cannot finish: refused, cancelled, or a step that never answers."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from contracts import Money
from contracts.events.orders import Delivery
from orders.domain.commands import CancelOrder
from orders.domain.errors import CheckoutRefused
from orders.domain.model import OrderStatus, Outcome
from orders.domain.saga_definition import Step
from orders.service_layer.checkout import RetryPolicy
from orders.service_layer.handlers import cancel_order, place_order
from orders.service_layer.ports import NoUsableAnswer
from services.orders.tests.conftest import DECLINED_CARD, SAFFRON, TEA, unavailable
from services.orders.tests.unit.conftest import RESERVATION_TTL, place_command
from services.orders.tests.unit.fakes import FakeUnitOfWork

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from orders.domain.model import Order
    from services.orders.tests.conftest import FakeBilling, FakeCatalog, FakeInventory
    from services.orders.tests.unit.fakes import FakeStore

    Place = Callable[..., Awaitable[str]]
    Drive = Callable[[str], Awaitable[Order]]


class Crash(BaseException):
    """The process dying in the middle of a call: nothing after it runs."""


def log_of(order: Order) -> list[tuple[str, str]]:
    return [(str(r.step), str(r.outcome)) for r in order.steps]


async def test_an_order_in_stock_with_a_good_card_is_confirmed(
    drive: Drive, place: Place, inventory: FakeInventory, billing: FakeBilling
) -> None:
    order_id = await place((SAFFRON.product_id, 2), (TEA.product_id, 1))

    order = await drive(order_id)

    assert order.status is OrderStatus.CONFIRMED
    assert order.total == Money(2 * 1490 + 850, "EUR")
    assert log_of(order) == [
        (str(step), "done")
        for step in (
            Step.PRICE,
            Step.RESERVE_STOCK,
            Step.AUTHORIZE_PAYMENT,
            Step.CAPTURE_PAYMENT,
            Step.COMMIT_STOCK,
        )
    ]
    assert inventory.reservations[order_id].status == "COMMITTED"
    assert inventory.available == {SAFFRON.sku: 8, TEA.sku: 4}
    assert inventory.ttls == [RESERVATION_TTL]
    payment = billing.payment_of(order_id)
    assert payment is not None
    assert (payment.status, payment.amount, order.payment_id) == (
        "CAPTURED",
        Money(3830, "EUR"),
        payment.id,
    )
    assert billing.customers == {order_id: order.customer_id}
    assert order.settled


EXPRESS = Delivery("Amina Benali", "12 Derb Sidi Ahmed", "30110", "Fes", "MA", "express")


async def test_a_priced_delivery_is_part_of_the_total_and_of_the_payment(
    store: FakeStore, drive: Drive, billing: FakeBilling
) -> None:
    command = replace(
        place_command((SAFFRON.product_id, 2)),
        delivery=EXPRESS,
        delivery_price=Money(990, "EUR"),
    )
    order_id = (await place_order(command, FakeUnitOfWork(store))).order.id

    order = await drive(order_id)

    assert order.status is OrderStatus.CONFIRMED
    assert (order.delivery, order.delivery_price) == (EXPRESS, Money(990, "EUR"))
    assert order.total == Money(2 * 1490 + 990, "EUR")
    payment = billing.payment_of(order_id)
    assert payment is not None
    assert (payment.status, payment.amount) == ("CAPTURED", Money(2 * 1490 + 990, "EUR"))


async def test_a_delivery_priced_in_another_currency_than_the_products_is_refused(
    store: FakeStore, drive: Drive, billing: FakeBilling
) -> None:
    command = replace(
        place_command((SAFFRON.product_id, 1)), delivery=EXPRESS, delivery_price=Money(990, "GBP")
    )
    order_id = (await place_order(command, FakeUnitOfWork(store))).order.id

    order = await drive(order_id)

    assert order.status is OrderStatus.REJECTED
    assert order.reason == "products priced in EUR, the delivery in GBP"
    assert billing.payment_of(order_id) is None


async def test_an_unknown_product_rejects_the_order_before_anything_is_reserved(
    drive: Drive, place: Place, inventory: FakeInventory, billing: FakeBilling
) -> None:
    order_id = await place((SAFFRON.product_id, 1), ("no-such-product", 1))

    order = await drive(order_id)

    assert (order.status, order.reason) == (OrderStatus.REJECTED, "unknown product no-such-product")
    assert inventory.calls == billing.calls == []


async def test_an_order_out_of_stock_is_rejected_and_no_payment_is_attempted(
    drive: Drive, place: Place, inventory: FakeInventory, billing: FakeBilling
) -> None:
    order_id = await place((SAFFRON.product_id, 11))

    order = await drive(order_id)

    assert order.status is OrderStatus.REJECTED
    assert order.reason == "out of stock: SPC-SAFFRON-2G (10 available)"
    assert billing.calls == []
    assert inventory.available[SAFFRON.sku] == 10
    assert order.settled


async def test_a_declined_card_rejects_the_order_and_releases_the_stock(
    drive: Drive, place: Place, inventory: FakeInventory, billing: FakeBilling
) -> None:
    order_id = await place((SAFFRON.product_id, 2), card_token=DECLINED_CARD)

    order = await drive(order_id)

    assert (order.status, order.reason) == (
        OrderStatus.REJECTED,
        "payment declined: insufficient funds",
    )
    assert inventory.reservations[order_id].status == "RELEASED"
    assert inventory.available[SAFFRON.sku] == 10
    assert billing.calls == ["authorize"]
    assert log_of(order)[-2:] == [("authorize-payment", "refused"), ("release-stock", "done")]
    assert order.settled


async def test_a_refused_capture_voids_the_payment_and_releases_the_stock(
    drive: Drive, place: Place, inventory: FakeInventory, billing: FakeBilling
) -> None:
    order_id = await place((TEA.product_id, 1))

    async def void_behind_the_checkouts_back() -> None:
        payment = billing.payment_of(order_id)
        assert payment is not None
        payment.status = "VOIDED"

    billing.during("capture", void_behind_the_checkouts_back)

    order = await drive(order_id)

    assert order.status is OrderStatus.REJECTED
    assert order.reason == f"payment not captured: payment {order.payment_id} is VOIDED"
    assert billing.calls == ["authorize", "capture", "void"]
    assert inventory.reservations[order_id].status == "RELEASED"
    assert order.settled


async def test_a_reservation_lapsed_by_commit_time_refunds_the_captured_payment(
    drive: Drive, place: Place, inventory: FakeInventory, billing: FakeBilling
) -> None:
    order_id = await place((TEA.product_id, 1))

    async def expire() -> None:
        inventory.expire(order_id)

    inventory.during("commit", expire)

    order = await drive(order_id)

    assert (order.status, order.reason) == (OrderStatus.REJECTED, "stock reservation lapsed")
    payment = billing.payment_of(order_id)
    assert payment is not None
    assert payment.status == "REFUNDED"
    assert inventory.available[TEA.sku] == 5


async def test_a_transient_failure_is_retried_and_the_order_confirmed(
    drive: Drive, place: Place, catalog: FakeCatalog, billing: FakeBilling
) -> None:
    order_id = await place((TEA.product_id, 1))
    catalog.fail("product", unavailable("catalog"))
    billing.fail("capture", unavailable("billing"), unavailable("billing"))

    order = await drive(order_id)

    assert order.status is OrderStatus.CONFIRMED
    assert (catalog.count("product"), billing.count("capture")) == (2, 3)
    assert order.last_error is None


async def test_a_failure_that_is_not_transient_is_not_retried(
    drive: Drive, place: Place, inventory: FakeInventory
) -> None:
    order_id = await place((TEA.product_id, 1))
    inventory.fail("reserve", NoUsableAnswer("inventory: INTERNAL", transient=False))

    order = await drive(order_id)

    assert inventory.count("reserve") == 1
    assert (order.status, order.last_error) == (
        OrderStatus.PENDING,
        "reserve-stock: inventory: INTERNAL",
    )


async def test_an_outage_outlasting_the_retries_leaves_the_order_pending_with_the_error(
    drive: Drive, place: Place, inventory: FakeInventory, billing: FakeBilling
) -> None:
    order_id = await place((TEA.product_id, 1))
    billing.fail("capture", *(unavailable("billing") for _ in range(3)))

    order = await drive(order_id)

    assert order.status is OrderStatus.PENDING
    assert order.last_error == "capture-payment: billing: connection refused"
    assert order.step_in_progress is Step.CAPTURE_PAYMENT
    assert log_of(order)[-1] == ("capture-payment", "failed")
    assert inventory.reservations[order_id].status == "RESERVED"
    assert not order.settled


async def test_the_command_delivered_again_after_the_outage_confirms_without_charging_twice(
    drive: Drive, place: Place, inventory: FakeInventory, billing: FakeBilling
) -> None:
    order_id = await place((TEA.product_id, 1))
    billing.fail("capture", *(unavailable("billing") for _ in range(3)))
    await drive(order_id)

    order = await drive(order_id)

    assert order.status is OrderStatus.CONFIRMED
    assert len(billing.payments) == 1
    assert (billing.count("authorize"), billing.count("capture")) == (1, 4)
    assert inventory.available[TEA.sku] == 4
    assert log_of(order)[-3:] == [
        ("capture-payment", "failed"),
        ("capture-payment", "done"),
        ("commit-stock", "done"),
    ]


async def test_an_answer_lost_after_its_effect_is_asked_again_to_the_same_effect(
    drive: Drive, place: Place, billing: FakeBilling
) -> None:
    order_id = await place((TEA.product_id, 1))
    billing.fail("authorize", *(unavailable("billing") for _ in range(3)), after_effect=True)

    pending = await drive(order_id)
    order = await drive(order_id)

    assert pending.step_in_progress is Step.AUTHORIZE_PAYMENT
    assert order.status is OrderStatus.CONFIRMED
    assert billing.count("authorize") == 4
    assert len(billing.payments) == 1


async def test_a_checkout_cut_short_by_a_crash_is_resumed_without_double_effects(
    drive: Drive, place: Place, inventory: FakeInventory, billing: FakeBilling
) -> None:
    order_id = await place((SAFFRON.product_id, 3))
    inventory.fail("reserve", Crash(), after_effect=True)
    with pytest.raises(Crash):
        await drive(order_id)

    order = await drive(order_id)

    assert order.status is OrderStatus.CONFIRMED
    assert inventory.count("reserve") == 2
    assert inventory.available[SAFFRON.sku] == 7
    assert len(billing.payments) == 1


async def test_commands_delivered_twice_at_once_confirm_the_order_once(
    drive: Drive, place: Place, inventory: FakeInventory, billing: FakeBilling
) -> None:
    order_id = await place((SAFFRON.product_id, 1), (TEA.product_id, 2))

    first, second = await asyncio.gather(drive(order_id), drive(order_id))

    assert first.status is second.status is OrderStatus.CONFIRMED
    assert inventory.available == {SAFFRON.sku: 9, TEA.sku: 3}
    assert len(billing.payments) == 1
    assert [s for s, outcome in log_of(second) if outcome == "done"] == [
        "price",
        "reserve-stock",
        "authorize-payment",
        "capture-payment",
        "commit-stock",
    ]


async def test_cancelling_an_order_while_a_step_is_under_way_undoes_that_step(
    drive: Drive,
    place: Place,
    store: FakeStore,
    inventory: FakeInventory,
    billing: FakeBilling,
) -> None:
    order_id = await place((SAFFRON.product_id, 2))

    async def customer_cancels() -> None:
        await cancel_order(CancelOrder(order_id, "c-1"), FakeUnitOfWork(store))

    inventory.during("reserve", customer_cancels)

    order = await drive(order_id)

    assert order.status is OrderStatus.CANCELLED
    assert inventory.reservations[order_id].status == "RELEASED"
    assert inventory.available[SAFFRON.sku] == 10
    assert billing.calls == []
    assert order.settled


async def test_cancelling_with_the_payment_in_doubt_voids_it_once_its_outcome_is_known(
    drive: Drive,
    place: Place,
    store: FakeStore,
    inventory: FakeInventory,
    billing: FakeBilling,
) -> None:
    order_id = await place((TEA.product_id, 1))
    billing.fail("authorize", *(unavailable("billing") for _ in range(3)), after_effect=True)
    await drive(order_id)
    await cancel_order(CancelOrder(order_id, "c-1"), FakeUnitOfWork(store))

    order = await drive(order_id)

    payment = billing.payment_of(order_id)
    assert payment is not None
    assert (order.status, payment.status) == (OrderStatus.CANCELLED, "VOIDED")
    assert inventory.reservations[order_id].status == "RELEASED"
    assert len(billing.payments) == 1
    assert order.settled


async def test_cancelling_a_confirmed_order_refunds_the_payment(
    drive: Drive,
    place: Place,
    store: FakeStore,
    inventory: FakeInventory,
    billing: FakeBilling,
) -> None:
    order_id = await place((TEA.product_id, 1))
    await drive(order_id)
    await cancel_order(CancelOrder(order_id, "c-1"), FakeUnitOfWork(store))

    order = await drive(order_id)

    payment = billing.payment_of(order_id)
    assert payment is not None
    assert (order.status, payment.status) == (OrderStatus.CANCELLED, "REFUNDED")
    # The stock that left the shelf for the order comes back: cancelling is not free stock.
    assert inventory.reservations[order_id].status == "RETURNED"
    assert inventory.available[TEA.sku] == 5
    assert log_of(order)[-2:] == [("return-stock", "done"), ("refund-payment", "done")]
    assert order.settled


async def test_a_return_of_stock_delivered_again_brings_the_stock_back_once(
    drive: Drive,
    place: Place,
    store: FakeStore,
    inventory: FakeInventory,
) -> None:
    order_id = await place((TEA.product_id, 1))
    await drive(order_id)
    await cancel_order(CancelOrder(order_id, "c-1"), FakeUnitOfWork(store))
    # Inventory returns the stock but the answer is lost: the command comes round again.
    inventory.fail("return", unavailable("inventory"), after_effect=True)

    await drive(order_id)
    order = await drive(order_id)
    await cancel_order(CancelOrder(order_id, "c-1"), FakeUnitOfWork(store))  # cancelled twice
    order = await drive(order_id)

    assert order.status is OrderStatus.CANCELLED
    assert inventory.available[TEA.sku] == 5
    assert [step for step, _ in log_of(order)].count("return-stock") >= 1
    assert order.settled


async def test_a_compensation_that_fails_stays_due_and_is_done_on_redelivery(
    drive: Drive, place: Place, inventory: FakeInventory
) -> None:
    order_id = await place((TEA.product_id, 1), card_token=DECLINED_CARD)
    inventory.fail("release", *(unavailable("inventory") for _ in range(3)))

    stuck = await drive(order_id)
    order = await drive(order_id)

    assert stuck.status is OrderStatus.REJECTED
    assert stuck.compensations_due() == [Step.RELEASE_STOCK]
    assert stuck.last_error == "release-stock: inventory: connection refused"
    assert order.settled
    assert inventory.available[TEA.sku] == 5


async def test_a_settled_order_has_no_command_out_and_calls_nobody(
    drive: Drive,
    place: Place,
    catalog: FakeCatalog,
    inventory: FakeInventory,
    billing: FakeBilling,
) -> None:
    order_id = await place((TEA.product_id, 1))
    await drive(order_id)
    calls = (len(catalog.calls), len(inventory.calls), len(billing.calls))

    order = await drive(order_id)

    assert order.status is OrderStatus.CONFIRMED
    assert (len(catalog.calls), len(inventory.calls), len(billing.calls)) == calls


async def test_a_refused_compensation_stays_due_and_shows_why(
    drive: Drive, place: Place, inventory: FakeInventory
) -> None:
    order_id = await place((TEA.product_id, 1), card_token=DECLINED_CARD)
    inventory.fail("release", CheckoutRefused("reservation is committed"))

    order = await drive(order_id)

    assert order.status is OrderStatus.REJECTED
    assert order.compensations_due() == [Step.RELEASE_STOCK]
    assert order.last_error == "release-stock: reservation is committed"
    assert inventory.count("release") == 1


def test_retries_wait_a_random_while_that_grows_up_to_a_ceiling() -> None:
    policy = RetryPolicy(attempts=5, base_delay=0.1, max_delay=0.3)

    delays = [[policy.delay(retry) for _ in range(50)] for retry in (1, 2, 3, 4)]

    assert all(0 <= d <= 0.1 for d in delays[0])
    assert all(0 <= d <= 0.2 for d in delays[1])
    assert all(0 <= d <= 0.3 for d in delays[2] + delays[3])
    assert len(set(delays[3])) > 1


async def test_a_failed_step_is_logged_with_outcome_failed(
    drive: Drive, place: Place, catalog: FakeCatalog
) -> None:
    order_id = await place((TEA.product_id, 1))
    catalog.fail("product", *(unavailable("catalog") for _ in range(3)))

    order = await drive(order_id)

    assert order.steps[-1].outcome is Outcome.FAILED
    assert order.steps[-1].detail == "catalog: connection refused"
