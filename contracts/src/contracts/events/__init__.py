"""The events Souk's services publish, one module per topic, and :func:`decode` for consumers.

Producers: an aggregate records these events and its unit of work puts them in the outbox,
``outbox.add_event(event.topic, event.key, event)``. Consumers:
``decode(message.event_type, message.schema_version, message.payload)``.
"""

from __future__ import annotations

from contracts.events import catalog, ledger, orders, payments, stock
from contracts.events.catalog import ProductCreated, ProductUpdated
from contracts.events.orders import (
    Delivery,
    OrderCancelled,
    OrderConfirmed,
    OrderItem,
    OrderPlaced,
    OrderRejected,
    PricedItem,
)
from contracts.events.payments import (
    PaymentAuthorized,
    PaymentCaptured,
    PaymentDeclined,
    PaymentRefunded,
    PaymentVoided,
)
from contracts.events.schema import (
    Event,
    EventError,
    MalformedEvent,
    UnknownEventType,
    UnsupportedSchemaVersion,
    decode,
    decode_data,
    from_json_object,
    occurred_now,
    schemas,
    timestamp,
    to_json_object,
)
from contracts.events.stock import (
    ReservationCommitted,
    ReservationExpired,
    ReservationReleased,
    ReservationReturned,
    StockLine,
    StockReserved,
)

__all__ = [
    "Delivery",
    "Event",
    "EventError",
    "MalformedEvent",
    "OrderCancelled",
    "OrderConfirmed",
    "OrderItem",
    "OrderPlaced",
    "OrderRejected",
    "PaymentAuthorized",
    "PaymentCaptured",
    "PaymentDeclined",
    "PaymentRefunded",
    "PaymentVoided",
    "PricedItem",
    "ProductCreated",
    "ProductUpdated",
    "ReservationCommitted",
    "ReservationExpired",
    "ReservationReleased",
    "ReservationReturned",
    "StockLine",
    "StockReserved",
    "UnknownEventType",
    "UnsupportedSchemaVersion",
    "catalog",
    "decode",
    "decode_data",
    "from_json_object",
    "ledger",
    "occurred_now",
    "orders",
    "payments",
    "schemas",
    "stock",
    "timestamp",
    "to_json_object",
]
