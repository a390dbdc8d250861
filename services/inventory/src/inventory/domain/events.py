"""Facts about reservations, recorded on the aggregate for publishing later."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    from inventory.domain.model import ReservationLine


@dataclass(frozen=True, slots=True)
class StockReserved:
    reservation_id: str
    lines: tuple[ReservationLine, ...]
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ReservationCommitted:
    reservation_id: str
    lines: tuple[ReservationLine, ...]


@dataclass(frozen=True, slots=True)
class ReservationReleased:
    reservation_id: str
    lines: tuple[ReservationLine, ...]


@dataclass(frozen=True, slots=True)
class ReservationExpired:
    reservation_id: str
    lines: tuple[ReservationLine, ...]


@dataclass(frozen=True, slots=True)
class ReservationReturned:
    reservation_id: str
    lines: tuple[ReservationLine, ...]


Event = (
    StockReserved
    | ReservationCommitted
    | ReservationReleased
    | ReservationExpired
    | ReservationReturned
)
