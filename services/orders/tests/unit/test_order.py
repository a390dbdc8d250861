"""The Order aggregate keeps the shop's rules and the checkout's log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contracts import Money
from contracts.events import OrderItem, PricedItem, timestamp
from orders.domain.commands import RequestedItem
from orders.domain.errors import CheckoutRefused, InvalidOrder, OrderMovedOn, OrderNotCancellable
from orders.domain.events import (
    PUBLISHED,
    Delivery,
    Event,
    OrderCancelled,
    OrderConfirmed,
    OrderPlaced,
    OrderRejected,
    StepBegun,
)
from orders.domain.model import (
    CHECKOUT,
    MAX_LINES,
    Order,
    OrderStatus,
    ProductSnapshot,
    StepDone,
)
from orders.domain.saga_definition import Outcome, Step
from services.orders.tests.conftest import GOOD_CARD

AT = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
MINT = ProductSnapshot("p-mint", "TEA-NANA-MINT-100G", "Dried nana mint", Money(490, "EUR"))
LAMP = ProductSnapshot("p-lamp", "LMP-STAR-S", "Star lantern, small", Money(3900, "EUR"))


def published(order: Order) -> list[Event]:
    """What the order recorded that the ``orders`` topic carries."""
    return [event for event in order.pending_events if isinstance(event, PUBLISHED)]


def begun(order: Order) -> list[StepBegun]:
    return [event for event in order.pending_events if isinstance(event, StepBegun)]


def new_order(*items: tuple[str, int]) -> Order:
    return Order.place(
        customer_id="c-1",
        items=[RequestedItem(p, q) for p, q in (items or (("p-mint", 2), ("p-lamp", 1)))],
        card_token=GOOD_CARD,
        at=AT,
    )


def priced(order: Order) -> Order:
    order.record_done(StepDone(Step.PRICE, products={"p-mint": MINT, "p-lamp": LAMP}), AT)
    return order


def through(order: Order, *steps: Step) -> Order:
    """The order with these steps done, as the checkout would record them."""
    for step in steps:
        if step is Step.PRICE:
            priced(order)
            continue
        order.begin(step, AT)
        order.record_done(StepDone(step, payment_id="pay-1"), AT)
    return order


def test_a_new_order_is_pending_with_its_items_as_unpriced_lines() -> None:
    order = new_order()

    assert order.status is OrderStatus.PENDING
    assert [(line.product_id, line.quantity, line.unit_price) for line in order.lines] == [
        ("p-mint", 2, None),
        ("p-lamp", 1, None),
    ]
    assert order.total is None
    assert published(order) == [
        OrderPlaced(
            order_id=order.id,
            customer_id="c-1",
            items=(OrderItem("p-mint", 2), OrderItem("p-lamp", 1)),
            occurred_at=timestamp(AT),
        )
    ]


def test_items_naming_the_same_product_are_merged_into_one_line() -> None:
    order = new_order(("p-mint", 2), ("p-lamp", 1), ("p-mint", 3))

    assert [(line.product_id, line.quantity) for line in order.lines] == [
        ("p-mint", 5),
        ("p-lamp", 1),
    ]


def test_merged_items_may_not_add_up_to_more_than_one_hundred() -> None:
    with pytest.raises(InvalidOrder) as caught:
        new_order(("p-mint", 60), ("p-mint", 41))

    assert caught.value.field == "quantity"


@pytest.mark.parametrize(
    ("items", "field"),
    [
        ((), "items"),
        ((("p-mint", 0),), "quantity"),
        ((("p-mint", 101),), "quantity"),
        ((("  ", 1),), "product_id"),
        (tuple((f"p-{n}", 1) for n in range(MAX_LINES + 1)), "items"),
    ],
)
def test_an_order_needs_one_to_fifty_products_in_quantities_of_one_to_one_hundred(
    items: tuple[tuple[str, int], ...], field: str
) -> None:
    with pytest.raises(InvalidOrder) as caught:
        Order.place(
            customer_id="c-1",
            items=[RequestedItem(p, q) for p, q in items],
            card_token=GOOD_CARD,
            at=AT,
        )

    assert caught.value.field == field


def test_pricing_fills_in_the_lines_and_the_total_at_the_prices_of_the_moment() -> None:
    order = priced(new_order())

    assert [(line.sku, line.unit_price, line.line_total) for line in order.lines] == [
        ("TEA-NANA-MINT-100G", Money(490, "EUR"), Money(980, "EUR")),
        ("LMP-STAR-S", Money(3900, "EUR"), Money(3900, "EUR")),
    ]
    assert order.total == Money(4880, "EUR")
    assert order.steps[-1].detail == "total 48.80 EUR"


def test_products_priced_in_several_currencies_cannot_make_one_order() -> None:
    order = new_order()
    dirham_lamp = ProductSnapshot("p-lamp", "LMP-STAR-S", "Star lantern", Money(39000, "MAD"))

    with pytest.raises(CheckoutRefused, match="several currencies: EUR, MAD"):
        order.record_done(
            StepDone(Step.PRICE, products={"p-mint": MINT, "p-lamp": dirham_lamp}), AT
        )

    assert order.total is None


def test_the_checkout_steps_come_in_order_and_end_in_confirmation() -> None:
    order = new_order()
    seen = []
    while (step := order.next_step()) is not None:
        seen.append(step)
        through(order, step)

    assert tuple(seen) == CHECKOUT
    assert order.awaiting_confirmation
    order.confirm(AT)
    assert order.status is OrderStatus.CONFIRMED
    assert order.settled
    assert published(order)[-1] == OrderConfirmed(
        order_id=order.id,
        customer_id="c-1",
        items=(
            PricedItem("p-mint", "TEA-NANA-MINT-100G", "Dried nana mint", 2, Money(490, "EUR")),
            PricedItem("p-lamp", "LMP-STAR-S", "Star lantern, small", 1, Money(3900, "EUR")),
        ),
        total=Money(4880, "EUR"),
        occurred_at=timestamp(AT),
    )


def test_the_card_token_is_forgotten_once_the_payment_is_authorized_or_declined() -> None:
    authorized = through(new_order(), Step.PRICE, Step.RESERVE_STOCK)
    declined = through(new_order(), Step.PRICE, Step.RESERVE_STOCK)

    assert authorized.card_token == GOOD_CARD
    through(authorized, Step.AUTHORIZE_PAYMENT)
    declined.refuse(Step.AUTHORIZE_PAYMENT, "payment declined: stolen card", AT)

    assert authorized.card_token == declined.card_token == ""


def test_a_step_with_effects_elsewhere_is_noted_before_it_is_tried() -> None:
    order = priced(new_order())

    order.begin(Step.RESERVE_STOCK, AT)

    assert order.step_in_progress is Step.RESERVE_STOCK
    assert order.next_step() is Step.RESERVE_STOCK


def test_a_step_that_is_not_next_cannot_begin() -> None:
    order = priced(new_order())

    with pytest.raises(OrderMovedOn):
        order.begin(Step.CAPTURE_PAYMENT, AT)


def test_a_failed_step_stays_in_doubt_with_the_error_shown() -> None:
    order = priced(new_order())
    order.begin(Step.RESERVE_STOCK, AT)

    order.fail(Step.RESERVE_STOCK, "inventory: UNAVAILABLE", AT)

    assert order.step_in_progress is Step.RESERVE_STOCK
    assert order.last_error == "reserve-stock: inventory: UNAVAILABLE"
    assert order.status is OrderStatus.PENDING
    assert not order.settled


def test_a_failure_repeating_the_last_one_is_logged_once_and_cleared_by_success() -> None:
    order = priced(new_order())
    order.begin(Step.RESERVE_STOCK, AT)

    for _ in range(3):
        order.fail(Step.RESERVE_STOCK, "inventory: UNAVAILABLE", AT)
    order.record_done(StepDone(Step.RESERVE_STOCK), AT)

    assert [(r.step, r.outcome) for r in order.steps] == [
        (Step.PRICE, Outcome.DONE),
        (Step.RESERVE_STOCK, Outcome.FAILED),
        (Step.RESERVE_STOCK, Outcome.DONE),
    ]
    assert order.last_error is None


def test_a_refused_step_rejects_a_pending_order_with_the_reason() -> None:
    order = priced(new_order())
    order.begin(Step.RESERVE_STOCK, AT)

    order.refuse(Step.RESERVE_STOCK, "out of stock: LMP-STAR-S (0 available)", AT)

    assert order.status is OrderStatus.REJECTED
    assert order.reason == "out of stock: LMP-STAR-S (0 available)"
    assert order.step_in_progress is None
    assert order.compensations_due() == []
    assert order.settled
    assert published(order)[-1] == OrderRejected(
        order_id=order.id,
        customer_id="c-1",
        reason="out of stock: LMP-STAR-S (0 available)",
        occurred_at=timestamp(AT),
    )


def test_an_outcome_reported_twice_is_recorded_once() -> None:
    order = through(new_order(), Step.PRICE, Step.RESERVE_STOCK)

    order.record_done(StepDone(Step.RESERVE_STOCK), AT)
    order.refuse(Step.RESERVE_STOCK, "out of stock", AT)

    assert [r.step for r in order.steps] == [Step.PRICE, Step.RESERVE_STOCK]
    assert order.status is OrderStatus.PENDING


def test_a_success_reported_after_a_refusal_of_the_same_step_is_still_undone() -> None:
    order = priced(new_order())
    order.refuse(Step.RESERVE_STOCK, "out of stock", AT)

    order.record_done(StepDone(Step.RESERVE_STOCK), AT)

    assert order.status is OrderStatus.REJECTED
    assert order.compensations_due() == [Step.RELEASE_STOCK]


def test_an_order_is_confirmed_only_once_every_step_is_done() -> None:
    order = through(new_order(), Step.PRICE, Step.RESERVE_STOCK, Step.AUTHORIZE_PAYMENT)

    with pytest.raises(OrderMovedOn):
        order.confirm(AT)


def test_a_rejection_after_authorizing_owes_a_void_and_a_release() -> None:
    order = through(new_order(), Step.PRICE, Step.RESERVE_STOCK, Step.AUTHORIZE_PAYMENT)
    order.begin(Step.CAPTURE_PAYMENT, AT)

    order.refuse(Step.CAPTURE_PAYMENT, "payment not captured", AT)

    assert order.compensations_due() == [Step.VOID_PAYMENT, Step.RELEASE_STOCK]
    assert order.next_step() is Step.VOID_PAYMENT
    assert not order.settled


def test_a_captured_payment_is_refunded_rather_than_voided() -> None:
    order = through(
        new_order(), Step.PRICE, Step.RESERVE_STOCK, Step.AUTHORIZE_PAYMENT, Step.CAPTURE_PAYMENT
    )
    order.begin(Step.COMMIT_STOCK, AT)

    order.refuse(Step.COMMIT_STOCK, "stock reservation lapsed", AT)

    assert order.compensations_due() == [Step.REFUND_PAYMENT, Step.RELEASE_STOCK]


def test_compensations_done_are_no_longer_due() -> None:
    order = through(new_order(), Step.PRICE, Step.RESERVE_STOCK)
    order.cancel(AT)

    order.record_done(StepDone(Step.RELEASE_STOCK), AT)

    assert order.compensations_due() == []
    assert order.settled


def test_cancelling_a_confirmed_order_returns_its_committed_stock_and_refunds_it() -> None:
    order = through(new_order(), *CHECKOUT)
    order.confirm(AT)

    order.cancel(AT)

    assert order.status is OrderStatus.CANCELLED
    assert order.reason == "cancelled by the customer"
    assert order.compensations_due() == [Step.RETURN_STOCK, Step.REFUND_PAYMENT]
    assert published(order)[-1] == OrderCancelled(
        order_id=order.id,
        customer_id="c-1",
        was_confirmed=True,
        total=Money(4880, "EUR"),
        occurred_at=timestamp(AT),
    )


def test_a_step_in_doubt_when_cancelled_is_settled_before_anything_is_undone() -> None:
    order = through(new_order(), Step.PRICE, Step.RESERVE_STOCK)
    order.begin(Step.AUTHORIZE_PAYMENT, AT)

    order.cancel(AT)

    assert order.next_step() is Step.AUTHORIZE_PAYMENT
    order.record_done(StepDone(Step.AUTHORIZE_PAYMENT, payment_id="pay-1"), AT)
    assert order.status is OrderStatus.CANCELLED
    assert order.compensations_due() == [Step.VOID_PAYMENT, Step.RELEASE_STOCK]


def test_a_cancelled_order_cannot_go_on_with_the_checkout() -> None:
    order = priced(new_order())
    order.cancel(AT)

    with pytest.raises(OrderMovedOn):
        order.begin(Step.RESERVE_STOCK, AT)
    assert order.settled


def test_cancelling_twice_is_harmless_but_a_rejected_order_cannot_be_cancelled() -> None:
    cancelled = new_order()
    cancelled.cancel(AT)
    cancelled.cancel(AT)
    rejected = priced(new_order())
    rejected.refuse(Step.RESERVE_STOCK, "out of stock", AT)

    assert [type(e) for e in published(cancelled)] == [OrderPlaced, OrderCancelled]
    with pytest.raises(OrderNotCancellable):
        rejected.cancel(AT)


def test_a_forward_step_begun_is_an_event_with_its_deadline() -> None:
    order = priced(new_order())

    order.advance(AT)

    deadline = AT + timedelta(seconds=30)
    assert begun(order) == [StepBegun(order.id, Step.RESERVE_STOCK, deadline, AT)]
    assert order.step_deadline == deadline


def test_a_second_command_is_not_sent_while_one_is_out() -> None:
    order = priced(new_order())
    order.advance(AT)

    order.advance(AT)

    assert [event.step for event in begun(order)] == [Step.RESERVE_STOCK]


def test_a_step_is_not_timed_out_before_its_deadline() -> None:
    order = priced(new_order())
    order.advance(AT)
    order.fail(Step.RESERVE_STOCK, "inventory: UNAVAILABLE", AT)  # its first attempt

    with pytest.raises(OrderMovedOn):
        order.time_out(Step.RESERVE_STOCK, AT + timedelta(seconds=29))

    order.time_out(Step.RESERVE_STOCK, AT + timedelta(seconds=30))
    assert (order.status, order.reason) == (
        OrderStatus.REJECTED,
        "reserve-stock got no answer in 30 s",
    )
    assert order.compensations_due() == [Step.RELEASE_STOCK]


def test_a_step_never_attempted_is_not_overdue_until_a_timeout_after_its_first_attempt() -> None:
    order = priced(new_order())
    order.advance(AT)
    queued_until = AT + timedelta(seconds=45)  # its command waited behind others

    assert not order.overdue(queued_until)
    assert order.waited_past_deadline(queued_until)
    order.start_late(Step.RESERVE_STOCK, queued_until)

    assert not order.overdue(queued_until + timedelta(seconds=29))
    assert order.overdue(queued_until + timedelta(seconds=30))


def test_a_compensation_begun_has_no_deadline() -> None:
    order = through(new_order(), Step.PRICE, Step.RESERVE_STOCK)
    order.cancel(AT)

    order.advance(AT)

    assert (order.step_in_progress, order.step_deadline) == (Step.RELEASE_STOCK, None)
    assert not order.overdue(AT + timedelta(days=365))


EXPRESS = Delivery("Amina Benali", "12 Derb Sidi Ahmed", "30110", "Fes", "MA", "express")


@pytest.mark.parametrize(
    ("delivery", "price"), [(None, Money(990, "EUR")), (EXPRESS, Money(-1, "EUR"))]
)
def test_only_a_delivery_has_a_price_and_it_is_never_negative(
    delivery: Delivery | None, price: Money
) -> None:
    with pytest.raises(InvalidOrder) as caught:
        Order.place(
            customer_id="c-1",
            items=[RequestedItem("p-mint", 1)],
            card_token=GOOD_CARD,
            at=AT,
            delivery=delivery,
            delivery_price=price,
        )

    assert caught.value.field == "delivery"


def test_the_delivery_price_is_published_with_the_order_and_added_to_its_total() -> None:
    order = Order.place(
        customer_id="c-1",
        items=[RequestedItem("p-mint", 2)],
        card_token=GOOD_CARD,
        at=AT,
        delivery=EXPRESS,
        delivery_price=Money(990, "EUR"),
    )
    [placed] = published(order)
    assert isinstance(placed, OrderPlaced)
    assert placed.delivery_price == Money(990, "EUR")
    assert order.total is None  # the products are not priced yet

    order.record_done(StepDone(Step.PRICE, products={"p-mint": MINT}), AT)

    assert order.total == Money(2 * 490 + 990, "EUR")
