"""An order folded from the events of four services: the same view whatever the order of
arrival and however often each event comes."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts import Money
from contracts.events import (
    Delivery,
    OrderCancelled,
    OrderItem,
    OrderPlaced,
    OrderRejected,
    PaymentDeclined,
    PaymentRefunded,
    PaymentVoided,
    ReservationReleased,
    StockLine,
    StockReserved,
    decode,
)
from order_history.domain.model import (
    History,
    Line,
    OrderStatus,
    OrderView,
    Payment,
    PaymentState,
    Product,
    Stock,
    StockState,
    moment_of,
)

from .conftest import (
    AUTHORIZED,
    CAPTURED,
    COMMITTED,
    CONFIRMED,
    CONFIRMED_STORY,
    PLACED,
    SAFFRON_CREATED,
    SAFFRON_ID,
    SAFFRON_RENAMED,
    TAGINE_CREATED,
    TAGINE_ID,
    at,
)

TOTAL = Money(5975, "EUR")


def folded(*events: object) -> OrderView:
    view = OrderView("o-1")
    for event in events:
        view.apply(event)  # type: ignore[arg-type]
    return view


def test_a_confirmed_order_shows_its_priced_lines_payment_and_stock() -> None:
    view = folded(*CONFIRMED_STORY)

    assert view == OrderView(
        order_id="o-1",
        customer_id="c-1",
        status=OrderStatus.CONFIRMED,
        placed_at=datetime(2026, 11, 25, 10, 10, tzinfo=UTC),
        updated_at=datetime(2026, 11, 25, 10, 15, tzinfo=UTC),
        total=TOTAL,
        ordered=PLACED.items,
        priced=CONFIRMED.items,
        payment=Payment(PaymentState.CAPTURED, TOTAL),
        stock=Stock(StockState.COMMITTED, COMMITTED.lines),
    )
    assert view.listed
    assert view.lines == (
        Line(SAFFRON_ID, 2, "SPC-SAFFRON-2G", "Saffron threads", Money(1490, "EUR")),
        Line(TAGINE_ID, 1, "CER-TAGINE-30CM", "Clay tagine, 30 cm", Money(2995, "EUR")),
    )


@given(
    st.permutations(CONFIRMED_STORY).flatmap(
        lambda story: st.lists(st.sampled_from(story), max_size=6).map(lambda again: story + again)
    )
)
def test_any_order_of_arrival_with_any_repetition_folds_into_the_same_view(events) -> None:
    assert folded(*events) == folded(*CONFIRMED_STORY)


def test_a_payment_before_its_order_waits_on_the_order_unlisted() -> None:
    view = folded(AUTHORIZED, CAPTURED)

    assert not view.listed
    assert view.payment == Payment(PaymentState.CAPTURED, TOTAL)
    assert view.customer_id == "c-1"  # the capture named the customer

    view.apply(PLACED)
    assert view.listed
    assert view.status is OrderStatus.PENDING
    assert view.payment == Payment(PaymentState.CAPTURED, TOTAL)


def test_a_cancellation_stands_even_if_the_confirmation_comes_after_it() -> None:
    cancelled = OrderCancelled("o-1", "c-1", was_confirmed=True, total=TOTAL, occurred_at=at(20))
    refunded = PaymentRefunded("pay-1", "o-1", TOTAL, at(21))

    in_order = folded(PLACED, CONFIRMED, CAPTURED, cancelled, refunded)
    shuffled = folded(refunded, cancelled, CAPTURED, CONFIRMED, PLACED)

    assert in_order == shuffled
    assert (in_order.status, in_order.total) == (OrderStatus.CANCELLED, TOTAL)
    assert in_order.payment == Payment(PaymentState.REFUNDED, TOTAL)


def test_a_declined_and_rejected_order_tells_why() -> None:
    declined = PaymentDeclined("pay-1", "o-1", TOTAL, "card_declined", at(12))
    rejected = OrderRejected("o-1", "c-1", "payment declined: card_declined", at(13))
    released = ReservationReleased("o-1", (StockLine("SPC-SAFFRON-2G", 2),), at(13))
    reserved = StockReserved("o-1", (StockLine("SPC-SAFFRON-2G", 2),), at(30), at(11))

    view = folded(PLACED, released, rejected, declined, reserved)

    assert (view.status, view.reason) == (OrderStatus.REJECTED, rejected.reason)
    assert view.payment == Payment(PaymentState.DECLINED, TOTAL, "card_declined")
    assert view.stock == Stock(StockState.RELEASED, released.lines)
    assert view.total is None
    assert view.lines == (Line(SAFFRON_ID, 2), Line(TAGINE_ID, 1))


def test_a_voided_hold_comes_after_its_authorization() -> None:
    voided = PaymentVoided("pay-1", "o-1", TOTAL, at(14))

    assert folded(voided, AUTHORIZED).payment == Payment(PaymentState.VOIDED, TOTAL)


def test_an_unpriced_line_takes_the_catalogs_name_and_a_priced_one_keeps_its_own() -> None:
    catalog = Product(SAFFRON_ID, "SPC-SAFFRON-2G", "Taliouine saffron threads, 2 g", 2)
    unpriced = Line(SAFFRON_ID, 2)
    priced = Line(SAFFRON_ID, 2, "SPC-SAFFRON-2G", "Saffron threads", Money(1490, "EUR"))

    assert unpriced.named(catalog) == Line(
        SAFFRON_ID, 2, "SPC-SAFFRON-2G", "Taliouine saffron threads, 2 g"
    )
    assert priced.named(catalog) == priced
    assert unpriced.named(None) == unpriced


def test_a_product_keeps_its_highest_version_whatever_came_last() -> None:
    history = History()
    for event in (SAFFRON_RENAMED, TAGINE_CREATED, SAFFRON_CREATED, SAFFRON_RENAMED):
        history.apply(event)

    assert history.products == {
        SAFFRON_ID: Product(SAFFRON_ID, "SPC-SAFFRON-2G", "Taliouine saffron threads, 2 g", 2),
        TAGINE_ID: Product(TAGINE_ID, "CER-TAGINE-30CM", "Clay tagine, 30 cm", 1),
    }
    assert history.orders == {}


def test_a_history_files_each_event_under_its_order() -> None:
    other = OrderPlaced("o-2", "c-2", (OrderItem(TAGINE_ID, 1),), at(30))
    history = History()
    for event in (*CONFIRMED_STORY, other):
        history.apply(event)

    assert history.orders == {"o-1": folded(*CONFIRMED_STORY), "o-2": history.orders["o-2"]}
    assert history.orders["o-2"].customer_id == "c-2"


def test_a_product_event_is_not_about_an_order() -> None:
    with pytest.raises(TypeError, match="ProductCreated is not about an order"):
        OrderView("o-1").apply(SAFFRON_CREATED)


@pytest.mark.parametrize("moment", ["2026-11-25T10:00:00", "yesterday"])
def test_a_moment_without_a_time_zone_or_not_a_moment_is_refused(moment: str) -> None:
    with pytest.raises(ValueError, match=moment):
        moment_of(moment)


def test_moments_are_kept_in_utc() -> None:
    assert moment_of("2026-11-25T11:00:00+01:00") == datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


DELIVERY = Delivery("Amina Benali", "12 Derb Sidi Ahmed", "30110", "Fes", "MA", "express")


def test_an_order_placed_with_a_delivery_shows_where_and_how_it_goes() -> None:
    view = OrderView("o-1")

    view.apply(OrderPlaced("o-1", "c-1", (OrderItem("p-1", 1),), at(10), delivery=DELIVERY))
    view.apply(OrderRejected("o-1", "c-1", "out of stock", at(11)))

    assert view.delivery == DELIVERY
    assert view.status is OrderStatus.REJECTED


def test_an_order_placed_before_deliveries_existed_has_none() -> None:
    stored_v2 = {
        "order_id": "o-1",
        "customer_id": "c-1",
        "items": [{"product_id": "p-1", "quantity": 1}],
        "occurred_at": at(10),
    }
    view = OrderView("o-1")

    view.apply(decode("OrderPlaced", 2, json.dumps(stored_v2).encode()))

    assert view.listed
    assert view.delivery is None
