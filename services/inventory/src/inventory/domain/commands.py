"""What callers ask the inventory to do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from inventory.domain.model import ReservationLine


@dataclass(frozen=True, slots=True)
class AdjustStock:
    """Give exactly one: ``set_on_hand`` (a stock-take's count) or ``add`` (may be negative)."""

    sku: str
    set_on_hand: int | None = None
    add: int | None = None


@dataclass(frozen=True, slots=True)
class ReserveStock:
    """Hold every line's quantity under ``reservation_id`` for ``ttl_seconds`` (None: default)."""

    reservation_id: str
    lines: tuple[ReservationLine, ...]
    ttl_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class CommitReservation:
    reservation_id: str


@dataclass(frozen=True, slots=True)
class ReleaseReservation:
    reservation_id: str


@dataclass(frozen=True, slots=True)
class ReturnReservation:
    reservation_id: str


@dataclass(frozen=True, slots=True)
class ExpireReservations:
    """Expire up to ``limit`` reservations still held past their expiry time."""

    limit: int = 100


@dataclass(frozen=True, slots=True)
class StockCount:
    sku: str
    on_hand: int


@dataclass(frozen=True, slots=True)
class ImportStock:
    """Start stocking the SKUs the inventory does not have yet; existing ones are kept."""

    counts: tuple[StockCount, ...]
