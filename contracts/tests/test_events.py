from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from contracts import Money
from contracts.events import (
    Delivery,
    MalformedEvent,
    OrderCancelled,
    OrderConfirmed,
    OrderItem,
    OrderPlaced,
    OrderRejected,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentDeclined,
    PaymentRefunded,
    PaymentVoided,
    PricedItem,
    ProductCreated,
    ProductUpdated,
    ReservationCommitted,
    ReservationExpired,
    ReservationReleased,
    ReservationReturned,
    StockLine,
    StockReserved,
    UnknownEventType,
    UnsupportedSchemaVersion,
    decode,
    schemas,
    timestamp,
)
from contracts.events.schema import _upcasters

AT = "2026-11-25T10:00:00+00:00"
EUR = Money(5990, "EUR")

EXAMPLES = [
    OrderPlaced("o-1", "c-1", (OrderItem("p-1", 2), OrderItem("p-2", 1)), AT),
    OrderConfirmed(
        "o-1",
        "c-1",
        (PricedItem("p-1", "SPC-SAFFRON-2G", "Saffron", 2, Money(1490, "EUR")),),
        Money(2980, "EUR"),
        AT,
    ),
    OrderRejected("o-1", "c-1", "out of stock: SPC-SAFFRON-2G", AT),
    OrderCancelled("o-1", "c-1", was_confirmed=True, total=EUR, occurred_at=AT),
    OrderCancelled("o-1", "c-1", was_confirmed=False, total=None, occurred_at=AT),
    PaymentAuthorized("pay-1", "o-1", EUR, "payment-primary", AT, customer_id="c-1"),
    PaymentDeclined("pay-1", "o-1", EUR, "card_declined", AT, customer_id="c-1"),
    PaymentCaptured("pay-1", "o-1", EUR, AT),
    PaymentVoided("pay-1", "o-1", EUR, AT, customer_id="c-1"),
    PaymentRefunded("pay-1", "o-1", Money(500, "JPY"), AT, customer_id="c-1"),
    StockReserved("o-1", (StockLine("SPC-SAFFRON-2G", 2),), "2026-11-25T10:15:00+00:00", AT),
    ReservationCommitted("o-1", (StockLine("SPC-SAFFRON-2G", 2),), AT),
    ReservationReleased("o-1", (StockLine("SPC-SAFFRON-2G", 2),), AT),
    ReservationExpired("o-1", (StockLine("A", 1), StockLine("B", 3)), AT),
    ReservationReturned("o-1", (StockLine("SPC-SAFFRON-2G", 2),), AT),
    ProductCreated("p-1", "SPC-SAFFRON-2G", "Saffron", "spices", Money(1490, "EUR"), 1, AT),
    ProductUpdated(
        "p-1", "SPC-SAFFRON-2G", "Saffron, 2 g", "spices", Money(1490, "EUR"), 2, ("name",), AT
    ),
]


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda event: type(event).__name__)
def test_every_event_survives_the_trip_through_json(event):
    decoded = decode(event.event_type, event.schema_version, event.to_json())
    assert decoded == event
    assert type(decoded) is type(event)


def test_every_schema_is_registered_with_its_topic():
    by_topic = {}
    for event_type, schema in schemas().items():
        assert schema.event_type == event_type
        by_topic.setdefault(schema.topic, set()).add(event_type)
    assert by_topic == {
        "orders": {"OrderPlaced", "OrderConfirmed", "OrderRejected", "OrderCancelled"},
        "payments": {
            "PaymentAuthorized",
            "PaymentDeclined",
            "PaymentCaptured",
            "PaymentVoided",
            "PaymentRefunded",
        },
        "stock": {
            "StockReserved",
            "ReservationCommitted",
            "ReservationReleased",
            "ReservationExpired",
            "ReservationReturned",
        },
        "catalog": {"ProductCreated", "ProductUpdated"},
        "ledger": {"AccountCredited", "AccountDebited"},
    }


KEYS = {"orders": "order_id", "payments": "order_id", "stock": "reservation_id"}
KEYS |= {"catalog": "product_id", "ledger": "account_id"}


def test_every_schema_is_keyed_on_its_topic_by_the_field_the_topic_promises():
    assert {name: schema.key_field for name, schema in schemas().items()} == {
        name: KEYS[schema.topic] for name, schema in schemas().items()
    }


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda event: type(event).__name__)
def test_an_events_key_is_the_value_of_its_key_field(event):
    assert event.key == getattr(event, KEYS[event.topic])


def test_every_older_version_has_an_upcaster_to_the_next():
    for event_type, schema in schemas().items():
        for version in range(1, schema.schema_version):
            assert (event_type, version) in _upcasters, (event_type, version)


def test_money_travels_as_minor_units_and_a_currency():
    body = json.loads(PaymentCaptured("pay-1", "o-1", EUR, AT).to_json())
    assert body["amount"] == {"amount": 5990, "currency": "EUR"}


def test_order_placed_has_items_as_objects_since_version_2():
    event = EXAMPLES[0]
    assert event.schema_version == 4
    assert json.loads(event.to_json())["items"] == [
        {"product_id": "p-1", "quantity": 2},
        {"product_id": "p-2", "quantity": 1},
    ]
    assert event.item_count == 3


def test_order_placed_version_1_is_upcast_from_pairs():
    v1 = {
        "order_id": "o-1",
        "customer_id": "c-1",
        "items": [["p-1", 2], ["p-2", 1]],
        "occurred_at": AT,
    }
    assert decode("OrderPlaced", 1, json.dumps(v1).encode()) == EXAMPLES[0]


def test_order_placed_version_2_is_upcast_to_an_order_without_a_delivery():
    v2 = {k: v for k, v in json.loads(EXAMPLES[0].to_json()).items() if k != "delivery"}
    upcast = decode("OrderPlaced", 2, json.dumps(v2).encode())
    assert upcast == EXAMPLES[0]
    assert upcast.delivery is None


def test_order_placed_carries_its_delivery_both_ways():
    delivery = Delivery("Amina B.", "12 Derb Sidi Ahmed", "30110", "Fes", "MA", "express")
    event = OrderPlaced("o-1", "c-1", (OrderItem("p-1", 1),), AT, delivery=delivery)
    assert json.loads(event.to_json())["delivery"]["option"] == "express"
    assert decode("OrderPlaced", 4, event.to_json()) == event


def test_order_placed_carries_its_delivery_price_since_version_4():
    delivery = Delivery("Amina B.", "12 Derb Sidi Ahmed", "30110", "Fes", "MA", "express")
    price = Money(990, "EUR")
    event = OrderPlaced(
        "o-1", "c-1", (OrderItem("p-1", 1),), AT, delivery=delivery, delivery_price=price
    )
    assert json.loads(event.to_json())["delivery_price"] == {"amount": 990, "currency": "EUR"}
    assert decode("OrderPlaced", 4, event.to_json()) == event


def test_order_placed_version_3_is_upcast_to_an_unpriced_delivery():
    delivery = Delivery("Amina B.", "12 Derb Sidi Ahmed", "30110", "Fes", "MA", "express")
    v3 = json.loads(OrderPlaced("o-1", "c-1", (OrderItem("p-1", 1),), AT, delivery).to_json())
    del v3["delivery_price"]
    upcast = decode("OrderPlaced", 3, json.dumps(v3).encode())
    assert upcast.delivery == delivery
    assert upcast.delivery_price is None


def test_a_version_1_payload_that_cannot_be_upcast_is_malformed():
    v1 = {"order_id": "o-1", "customer_id": "c-1", "items": [["p-1"]], "occurred_at": AT}
    with pytest.raises(MalformedEvent, match="cannot be upcast"):
        decode("OrderPlaced", 1, json.dumps(v1))


def test_fields_a_newer_producer_added_are_ignored():
    body = json.loads(EXAMPLES[1].to_json())
    body["gift_wrapped"] = True
    body["items"][0]["colour"] = "red"
    body["total"]["display"] = "29.80 EUR"
    assert decode("OrderConfirmed", 1, json.dumps(body)) == EXAMPLES[1]


def test_a_field_added_with_a_default_reads_from_older_payloads():
    body = json.loads(PaymentCaptured("pay-1", "o-1", EUR, AT, customer_id="c-1").to_json())
    del body["customer_id"]
    assert decode("PaymentCaptured", 1, json.dumps(body)).customer_id is None


def test_an_unknown_event_type_is_a_clear_error():
    with pytest.raises(UnknownEventType, match=r"unknown event type 'OrderShipped'.*OrderPlaced"):
        decode("OrderShipped", 1, b"{}")


@pytest.mark.parametrize("version", [0, 5])
def test_a_version_this_consumer_does_not_know_is_refused(version):
    with pytest.raises(UnsupportedSchemaVersion, match=f"OrderPlaced version {version}"):
        decode("OrderPlaced", version, EXAMPLES[0].to_json())


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"order_id": "o-1"}', "field 'customer_id' is missing"),
        (
            b'{"order_id": 1, "customer_id": "c", "reason": "r", "occurred_at": "t"}',
            "OrderRejected.order_id: expected a string",
        ),
    ],
)
def test_a_malformed_payload_says_what_is_wrong(payload, message):
    with pytest.raises(MalformedEvent, match=message):
        decode("OrderRejected", 1, payload)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"total": {"amount": 1.5, "currency": "EUR"}}, "total: not money"),
        ({"total": {"amount": 100, "currency": "XXX"}}, "total: not money"),
        ({"total": 100}, "total: expected an amount"),
        ({"items": {}}, "items: expected a list"),
        ({"items": [{"product_id": "p"}]}, r"items\[0\]: field 'sku' is missing"),
        ({"items": [7]}, r"items\[0\]: expected an object"),
    ],
)
def test_nested_values_are_checked(change, message):
    body = {**json.loads(EXAMPLES[1].to_json()), **change}
    with pytest.raises(MalformedEvent, match=message):
        decode("OrderConfirmed", 1, json.dumps(body))


def test_booleans_and_integers_are_not_mistaken_for_each_other():
    body = json.loads(EXAMPLES[3].to_json())
    with pytest.raises(MalformedEvent, match="expected true or false"):
        decode("OrderCancelled", 1, json.dumps({**body, "was_confirmed": 1}))
    placed = json.loads(EXAMPLES[0].to_json())
    placed["items"][0]["quantity"] = True
    with pytest.raises(MalformedEvent, match="expected an integer"):
        decode("OrderPlaced", 2, json.dumps(placed))


def test_timestamps_are_iso_8601_in_utc():
    moment = datetime(2026, 11, 25, 11, 0, tzinfo=timezone(timedelta(hours=1)))
    assert timestamp(moment) == "2026-11-25T10:00:00+00:00"
    assert datetime.fromisoformat(timestamp(datetime.now(UTC))).tzinfo is not None
    with pytest.raises(ValueError, match="timezone-aware"):
        timestamp(datetime(2026, 11, 25))
