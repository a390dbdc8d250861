"""Streams and snapshots written before a change to the Order's events still load, and what
is written now is the JSON that was written then: a stored order outlives every release.

The literals below are what orders stored for one order (placed, a pricing that failed once,
priced, stock reserved, payment authorized, cancelled, its payment being voided), copied
from the event store of the release before events became the ``contracts`` types.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from chassis.eventstore import RecordedEvent
from contracts import Money
from orders.adapters.event_codec import OrderEvents, OrderSnapshots
from orders.domain.model import Order, OrderStatus
from orders.domain.saga_definition import Outcome, Step

ORDER = "63b2c15d-3b20-429a-815a-620542c9e804"
AT = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

STREAM: list[tuple[str, int, dict[str, Any]]] = [
    (
        "OrderPlaced",
        2,
        {
            "order_id": ORDER,
            "customer_id": "c-1",
            "items": [{"product_id": "p-mint", "quantity": 2}],
            "occurred_at": "2026-11-25T12:00:00+00:00",
        },
    ),
    (
        "CheckoutStepBegun",
        1,
        {
            "order_id": ORDER,
            "step": "price",
            "deadline": "2026-11-25T12:00:30+00:00",
            "at": "2026-11-25T12:00:00+00:00",
        },
    ),
    (
        "CheckoutStepRecorded",
        1,
        {
            "order_id": ORDER,
            "step": "price",
            "outcome": "failed",
            "detail": "catalog: 503",
            "at": "2026-11-25T12:00:01+00:00",
            "payment_id": None,
        },
    ),
    (
        "OrderPriced",
        1,
        {
            "order_id": ORDER,
            "lines": [
                {
                    "product_id": "p-mint",
                    "quantity": 2,
                    "sku": "TEA-NANA-MINT-100G",
                    "name": "Dried nana mint",
                    "unit_price": {"amount": 490, "currency": "EUR"},
                }
            ],
            "at": "2026-11-25T12:00:02+00:00",
        },
    ),
    (
        "CheckoutStepRecorded",
        1,
        {
            "order_id": ORDER,
            "step": "price",
            "outcome": "done",
            "detail": "total 9.80 EUR",
            "at": "2026-11-25T12:00:02+00:00",
            "payment_id": None,
        },
    ),
    (
        "CheckoutStepBegun",
        1,
        {
            "order_id": ORDER,
            "step": "reserve-stock",
            "deadline": "2026-11-25T12:00:32+00:00",
            "at": "2026-11-25T12:00:02+00:00",
        },
    ),
    (
        "CheckoutStepRecorded",
        1,
        {
            "order_id": ORDER,
            "step": "reserve-stock",
            "outcome": "done",
            "detail": "",
            "at": "2026-11-25T12:00:03+00:00",
            "payment_id": None,
        },
    ),
    (
        "CheckoutStepBegun",
        1,
        {
            "order_id": ORDER,
            "step": "authorize-payment",
            "deadline": "2026-11-25T12:01:03+00:00",
            "at": "2026-11-25T12:00:03+00:00",
        },
    ),
    (
        "CheckoutStepRecorded",
        1,
        {
            "order_id": ORDER,
            "step": "authorize-payment",
            "outcome": "done",
            "detail": "payment pay-1",
            "at": "2026-11-25T12:00:04+00:00",
            "payment_id": "pay-1",
        },
    ),
    (
        "OrderCancelled",
        1,
        {
            "order_id": ORDER,
            "customer_id": "c-1",
            "was_confirmed": False,
            "total": {"amount": 980, "currency": "EUR"},
            "occurred_at": "2026-11-25T12:00:05+00:00",
        },
    ),
    (
        "CheckoutStepBegun",
        1,
        {
            "order_id": ORDER,
            "step": "void-payment",
            "deadline": None,
            "at": "2026-11-25T12:00:05+00:00",
        },
    ),
]

SNAPSHOT_FORMAT_1: dict[str, Any] = {
    "customer_id": "c-1",
    "lines": [
        {
            "product_id": "p-mint",
            "quantity": 2,
            "sku": "TEA-NANA-MINT-100G",
            "name": "Dried nana mint",
            "unit_price": {"amount": 490, "currency": "EUR"},
        }
    ],
    "status": "CANCELLED",
    "reason": "cancelled by the customer",
    "last_error": None,
    "payment_id": "pay-1",
    "step_in_progress": "void-payment",
    "step_deadline": None,
    "steps": [
        {
            "step": "price",
            "outcome": "failed",
            "detail": "catalog: 503",
            "at": "2026-11-25T12:00:01+00:00",
        },
        {
            "step": "price",
            "outcome": "done",
            "detail": "total 9.80 EUR",
            "at": "2026-11-25T12:00:02+00:00",
        },
        {
            "step": "reserve-stock",
            "outcome": "done",
            "detail": "",
            "at": "2026-11-25T12:00:03+00:00",
        },
        {
            "step": "authorize-payment",
            "outcome": "done",
            "detail": "payment pay-1",
            "at": "2026-11-25T12:00:04+00:00",
        },
    ],
    "created_at": "2026-11-25T12:00:00+00:00",
    "updated_at": "2026-11-25T12:00:05+00:00",
}


def recorded(stream: list[tuple[str, int, dict[str, Any]]]) -> list[RecordedEvent]:
    return [
        RecordedEvent(
            stream_id=f"order-{ORDER}",
            version=version,
            event_type=event_type,
            schema_version=schema_version,
            data=data,
            event_id=f"e-{version}",
            recorded_at=AT,
        )
        for version, (event_type, schema_version, data) in enumerate(stream, 1)
    ]


def folded(stream: list[tuple[str, int, dict[str, Any]]]) -> Order:
    order = Order(ORDER)
    for event in recorded(stream):
        order.apply(OrderEvents().decode(event))
    return order


def test_a_stream_stored_before_folds_into_the_order_it_recorded() -> None:
    order = folded(STREAM)

    assert order.version == 11
    assert order.customer_id == "c-1"
    assert order.status is OrderStatus.CANCELLED
    assert order.reason == "cancelled by the customer"
    assert order.total == Money(980, "EUR")
    assert [(line.product_id, line.quantity, line.sku) for line in order.lines] == [
        ("p-mint", 2, "TEA-NANA-MINT-100G")
    ]
    assert order.payment_id == "pay-1"
    assert order.step_in_progress is Step.VOID_PAYMENT
    assert order.step_deadline is None
    assert [(r.step, r.outcome) for r in order.steps] == [
        (Step.PRICE, Outcome.FAILED),
        (Step.PRICE, Outcome.DONE),
        (Step.RESERVE_STOCK, Outcome.DONE),
        (Step.AUTHORIZE_PAYMENT, Outcome.DONE),
    ]
    assert order.created_at == AT
    assert order.updated_at == datetime(2026, 11, 25, 12, 0, 5, tzinfo=UTC)
    assert order.next_step() is Step.VOID_PAYMENT
    assert order.compensations_due() == [Step.VOID_PAYMENT, Step.RELEASE_STOCK]


def test_the_events_written_now_are_the_json_written_before() -> None:
    codec = OrderEvents()

    rewritten = [codec.encode(codec.decode(event)) for event in recorded(STREAM)]

    # OrderPlaced is written as version 3 since deliveries (issue 18), version 4 since their
    # prices: the stored version 2 comes back as it was, with no delivery and so no price;
    # every other event exactly as stored.
    placed_v4 = ("OrderPlaced", 4, {**STREAM[0][2], "delivery": None, "delivery_price": None})
    assert [(e.event_type, e.schema_version, dict(e.data)) for e in rewritten] == [
        placed_v4,
        *STREAM[1:],
    ]


# What the release before delivery prices stored for an order placed with a delivery (both
# options were free then): OrderPlaced version 3, and a format 2 snapshot.
DELIVERY_V3: dict[str, Any] = {
    "name": "Amina Benali",
    "address": "12 Derb Sidi Ahmed",
    "postcode": "30110",
    "city": "Fes",
    "country": "MA",
    "option": "express",
}
STREAM_WITH_DELIVERY_V3 = [
    ("OrderPlaced", 3, {**STREAM[0][2], "delivery": DELIVERY_V3}),
    *STREAM[1:],
]


def test_an_order_placed_with_a_free_delivery_under_version_3_still_loads_free() -> None:
    order = folded(STREAM_WITH_DELIVERY_V3)

    assert order.delivery is not None
    assert (order.delivery.option, order.delivery.city) == ("express", "Fes")
    assert order.delivery_price is None
    # Its total is what it was charged then: the products alone.
    assert order.total == Money(980, "EUR")
    rewritten = OrderEvents().encode(OrderEvents().decode(recorded(STREAM_WITH_DELIVERY_V3)[0]))
    assert (rewritten.schema_version, dict(rewritten.data)) == (
        4,
        {**STREAM[0][2], "delivery": DELIVERY_V3, "delivery_price": None},
    )


def test_a_format_2_snapshot_restores_its_delivery_without_a_price() -> None:
    format_2 = {**SNAPSHOT_FORMAT_1, "delivery": DELIVERY_V3}

    restored = OrderSnapshots().restore(ORDER, 11, format_2)

    assert restored.delivery is not None
    assert restored.delivery.option == "express"
    assert restored.delivery_price is None
    assert restored.total == Money(980, "EUR")


def test_an_order_placed_under_schema_version_1_still_loads() -> None:
    placed_v1 = ("OrderPlaced", 1, {**STREAM[0][2], "items": [["p-mint", 2]]})

    order = folded([placed_v1, *STREAM[1:]])

    assert order.lines == folded(STREAM).lines
    assert order.version == 11


def test_a_snapshot_stored_before_restores_the_order_its_stream_folds_into() -> None:
    snapshots = OrderSnapshots()

    restored = snapshots.restore(ORDER, 11, SNAPSHOT_FORMAT_1)

    order = folded(STREAM)
    # Format 2 (issue 18) adds the delivery, format 3 its price; a format 1 snapshot
    # restores without either.
    assert snapshots.format == 3
    assert restored.delivery is None
    assert (restored.version, restored.status, restored.lines, restored.steps) == (
        order.version,
        order.status,
        order.lines,
        order.steps,
    )
    assert (restored.step_in_progress, restored.payment_id, restored.reason) == (
        order.step_in_progress,
        order.payment_id,
        order.reason,
    )
    assert (restored.created_at, restored.updated_at) == (order.created_at, order.updated_at)
    assert dict(snapshots.state_of(order)) == {
        **SNAPSHOT_FORMAT_1,
        "delivery": None,
        "delivery_price": None,
    }


def test_a_stored_event_of_a_type_orders_never_wrote_is_refused() -> None:
    with pytest.raises(ValueError, match="PaymentAuthorized"):
        OrderEvents().decode(recorded([("PaymentAuthorized", 1, {"order_id": ORDER})])[0])
