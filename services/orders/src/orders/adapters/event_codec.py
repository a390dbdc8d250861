"""The Order's stream and snapshots in the event store: every event is a ``contracts``
schema, written with its one serializer and read back through ``decode_data``, which
upcasts the events stored under older schema versions; a snapshot is the Order's state
written by the same serializer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from chassis.eventstore import NewEvent, RecordedEvent
from contracts.events import EventError, decode_data, from_json_object, to_json_object
from orders.domain.events import PRIVATE, PUBLISHED, Event
from orders.domain.model import Order, OrderState

if TYPE_CHECKING:
    from collections.abc import Mapping

_PRIVATE: Final = {schema.event_type: schema for schema in PRIVATE}
_STORED: Final = (*PUBLISHED, *PRIVATE)


class OrderEvents:
    """The event codec of the Order's stream."""

    def encode(self, event: Event) -> NewEvent:
        return NewEvent(event.event_type, event.to_dict(), schema_version=event.schema_version)

    def decode(self, event: RecordedEvent) -> Event:
        schema = _PRIVATE.get(event.event_type)
        try:
            decoded = decode_data(event.event_type, event.schema_version, event.data, schema=schema)
        except EventError as error:
            raise ValueError(f"an order's stream holds a {event.event_type}: {error}") from error
        if isinstance(decoded, _STORED):
            return decoded
        raise ValueError(f"an order's stream holds a {event.event_type}")


class OrderSnapshots:
    """The snapshot codec. Bump ``format`` whenever OrderState changes shape (2: delivery;
    3: the delivery's price)."""

    format: Final = 3

    def state_of(self, order: Order) -> Mapping[str, Any]:
        return to_json_object(order.state())

    def restore(self, order_id: str, version: int, state: Mapping[str, Any]) -> Order:
        return Order.restored(order_id, version, from_json_object(OrderState, state))
