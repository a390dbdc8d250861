"""Events of topic ``stock``, keyed by reservation id: stock held, taken and given back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final

from contracts.events.schema import Event, register

TOPIC: Final = "stock"


@dataclass(frozen=True, slots=True)
class StockLine:
    """Units of one SKU."""

    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class StockReserved(Event):
    """Stock is held for a reservation until ``expires_at`` (ISO 8601)."""

    event_type: ClassVar[str] = "StockReserved"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[str] = TOPIC
    key_field: ClassVar[str] = "reservation_id"

    reservation_id: str
    lines: tuple[StockLine, ...]
    expires_at: str
    occurred_at: str


@dataclass(frozen=True, slots=True)
class ReservationCommitted(Event):
    """The reserved stock left the shelf."""

    event_type: ClassVar[str] = "ReservationCommitted"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[str] = TOPIC
    key_field: ClassVar[str] = "reservation_id"

    reservation_id: str
    lines: tuple[StockLine, ...]
    occurred_at: str


@dataclass(frozen=True, slots=True)
class ReservationReleased(Event):
    """The reserved stock went back on the shelf, as the caller asked."""

    event_type: ClassVar[str] = "ReservationReleased"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[str] = TOPIC
    key_field: ClassVar[str] = "reservation_id"

    reservation_id: str
    lines: tuple[StockLine, ...]
    occurred_at: str


@dataclass(frozen=True, slots=True)
class ReservationExpired(Event):
    """Nobody came back for the reservation in time: its stock went back on the shelf."""

    event_type: ClassVar[str] = "ReservationExpired"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[str] = TOPIC
    key_field: ClassVar[str] = "reservation_id"

    reservation_id: str
    lines: tuple[StockLine, ...]
    occurred_at: str


@dataclass(frozen=True, slots=True)
class ReservationReturned(Event):
    """Committed stock came back on the shelf: the order it left for was cancelled."""

    event_type: ClassVar[str] = "ReservationReturned"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[str] = TOPIC
    key_field: ClassVar[str] = "reservation_id"

    reservation_id: str
    lines: tuple[StockLine, ...]
    occurred_at: str


register(
    StockReserved,
    ReservationCommitted,
    ReservationReleased,
    ReservationExpired,
    ReservationReturned,
)
