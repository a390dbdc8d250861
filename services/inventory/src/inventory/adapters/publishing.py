"""The inventory's domain events as the ``stock`` topic carries them (``contracts.events``).

The unit of work calls :func:`publish` as it commits, so the events of the reservations
written in a transaction reach the outbox in that same transaction: published if, and only
if, the change they describe is stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, assert_never

from contracts.events import stock as published
from contracts.events import timestamp
from inventory.domain import events

if TYPE_CHECKING:
    from collections.abc import Iterable

    from chassis.messaging.outbox import Outbox
    from contracts.events import Event
    from inventory.domain.model import Reservation, ReservationLine


def publish(reservations: Iterable[Reservation], outbox: Outbox) -> None:
    """Move the events the reservations recorded into the outbox, keyed by reservation id."""
    occurred_at = timestamp(datetime.now(UTC))
    for reservation in reservations:
        for event in reservation.events:
            outbox.add_event(published.TOPIC, reservation.id, contract_event(event, occurred_at))
        reservation.events.clear()


def contract_event(event: events.Event, occurred_at: str) -> Event:
    """``event`` in its published form."""
    lines = _lines(event.lines)
    match event:
        case events.StockReserved():
            return published.StockReserved(
                reservation_id=event.reservation_id,
                lines=lines,
                expires_at=timestamp(event.expires_at),
                occurred_at=occurred_at,
            )
        case events.ReservationCommitted():
            return published.ReservationCommitted(event.reservation_id, lines, occurred_at)
        case events.ReservationReleased():
            return published.ReservationReleased(event.reservation_id, lines, occurred_at)
        case events.ReservationExpired():
            return published.ReservationExpired(event.reservation_id, lines, occurred_at)
        case events.ReservationReturned():
            return published.ReservationReturned(event.reservation_id, lines, occurred_at)
        case _:
            assert_never(event)


def _lines(lines: Iterable[ReservationLine]) -> tuple[published.StockLine, ...]:
    return tuple(published.StockLine(sku=line.sku, quantity=line.quantity) for line in lines)
