"""The StockItem and Reservation aggregates: what is on the shelf, and what is held for whom."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from contracts.events import (
    Event,
    ReservationCommitted,
    ReservationExpired,
    ReservationReleased,
    ReservationReturned,
    StockLine,
    StockReserved,
    occurred_now,
    timestamp,
)
from inventory.domain.errors import (
    InvalidReservation,
    InvalidStockItem,
    OutOfStock,
    ReservationClosed,
    ReservationConflict,
    StockStillReserved,
    UnknownSku,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from datetime import datetime

SKU_PATTERN: Final = r"^[A-Z0-9]+(?:-[A-Z0-9]+)*$"
SKU_MAX_LENGTH: Final = 40
RESERVATION_ID_PATTERN: Final = r"^[A-Za-z0-9._:-]+$"
RESERVATION_ID_MAX_LENGTH: Final = 64
MAX_UNITS: Final = 1_000_000_000
DEFAULT_TTL: Final = timedelta(minutes=15)
MAX_TTL: Final = timedelta(days=1)

_SKU = re.compile(SKU_PATTERN)
_RESERVATION_ID = re.compile(RESERVATION_ID_PATTERN)


def checked_sku(sku: str) -> str:
    """``sku`` if it is well-formed (as the catalog writes SKUs), else InvalidStockItem."""
    if len(sku) > SKU_MAX_LENGTH or not _SKU.match(sku):
        raise InvalidStockItem(
            "sku",
            f"must be 1-{SKU_MAX_LENGTH} upper-case letters and digits in dash-separated "
            f"groups, such as SPC-SAFFRON-2G; got {sku!r}",
        )
    return sku


def checked_reservation_id(reservation_id: str) -> str:
    """``reservation_id`` if it is well-formed, else InvalidReservation."""
    if len(reservation_id) > RESERVATION_ID_MAX_LENGTH or not _RESERVATION_ID.match(reservation_id):
        raise InvalidReservation(
            "reservation_id",
            f"must be 1-{RESERVATION_ID_MAX_LENGTH} letters, digits, '.', '_', ':' or '-'; "
            f"got {reservation_id!r}",
        )
    return reservation_id


class StockItem:
    """The units of one SKU on the shelf, some of them reserved. Available is never negative."""

    def __init__(self, *, sku: str, on_hand: int = 0, reserved: int = 0) -> None:
        self.sku = checked_sku(sku)
        if not 0 <= reserved <= on_hand <= MAX_UNITS:
            raise InvalidStockItem(
                "on_hand",
                f"need 0 <= reserved <= on hand <= {MAX_UNITS}; "
                f"got {reserved} reserved of {on_hand}",
            )
        self.on_hand = on_hand
        self.reserved = reserved

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    def count(self, on_hand: int) -> None:
        """A stock-take found ``on_hand`` units on the shelf."""
        if not 0 <= on_hand <= MAX_UNITS:
            raise InvalidStockItem("set_on_hand", f"must be 0-{MAX_UNITS}; got {on_hand}")
        if on_hand < self.reserved:
            raise StockStillReserved(self.sku, on_hand=on_hand, reserved=self.reserved)
        self.on_hand = on_hand

    def add(self, units: int) -> None:
        """Units received (positive) or written off (negative)."""
        on_hand = self.on_hand + units
        if on_hand > MAX_UNITS:
            raise InvalidStockItem("add", f"would make {on_hand} on hand, over {MAX_UNITS}")
        if on_hand < self.reserved:
            raise StockStillReserved(self.sku, on_hand=on_hand, reserved=self.reserved)
        self.on_hand = on_hand

    def hold(self, quantity: int) -> None:
        """Set ``quantity`` units aside for a reservation."""
        if quantity > self.available:
            raise OutOfStock(self.sku, requested=quantity, available=self.available)
        self.reserved += quantity

    def unhold(self, quantity: int) -> None:
        """Put ``quantity`` reserved units back among the available ones."""
        self.reserved -= quantity

    def ship(self, quantity: int) -> None:
        """``quantity`` reserved units leave the shelf."""
        self.reserved -= quantity
        self.on_hand -= quantity

    def take_back(self, quantity: int) -> None:
        """``quantity`` shipped units come back on the shelf."""
        self.on_hand += quantity

    def __repr__(self) -> str:
        return f"StockItem(sku={self.sku!r}, on_hand={self.on_hand}, reserved={self.reserved})"


@dataclass(frozen=True, slots=True, order=True)
class ReservationLine:
    sku: str
    quantity: int


class ReservationStatus(StrEnum):
    RESERVED = "reserved"
    COMMITTED = "committed"
    RELEASED = "released"
    EXPIRED = "expired"
    RETURNED = "returned"


def reservation_lines(lines: Iterable[ReservationLine]) -> tuple[ReservationLine, ...]:
    """The lines if valid (at least one, each SKU once, each quantity positive), by SKU."""
    checked: list[ReservationLine] = []
    for index, line in enumerate(lines):
        try:
            checked_sku(line.sku)
        except InvalidStockItem as error:
            raise InvalidReservation(f"lines[{index}].sku", error.reason) from None
        if not 1 <= line.quantity <= MAX_UNITS:
            raise InvalidReservation(
                f"lines[{index}].quantity", f"must be 1-{MAX_UNITS}; got {line.quantity}"
            )
        checked.append(line)
    if not checked:
        raise InvalidReservation("lines", "a reservation needs at least one line")
    skus = [line.sku for line in checked]
    if len(set(skus)) != len(skus):
        repeated = sorted({sku for sku in skus if skus.count(sku) > 1})
        raise InvalidReservation("lines", f"each SKU at most once; repeated: {repeated}")
    return tuple(sorted(checked))


def reservation_ttl(seconds: int | None) -> timedelta:
    """How long a reservation holds its stock: ``seconds``, or the default for None."""
    if seconds is None:
        return DEFAULT_TTL
    if not 1 <= seconds <= MAX_TTL.total_seconds():
        raise InvalidReservation(
            "ttl_seconds", f"must be 1-{int(MAX_TTL.total_seconds())}; got {seconds}"
        )
    return timedelta(seconds=seconds)


class Reservation:
    """Stock held for a caller under an id of its choosing (an order id, say).

    RESERVED until committed (the stock leaves the shelf), released (it goes back) or
    expired (released because nobody came back for it by ``expires_at``). Repeating a
    commit or a release changes nothing, so callers may retry them safely.
    """

    def __init__(
        self,
        *,
        id: str,  # noqa: A002 - the aggregate's identity is called id everywhere
        lines: Iterable[ReservationLine],
        status: ReservationStatus,
        expires_at: datetime,
    ) -> None:
        self.id = checked_reservation_id(id)
        self.lines = reservation_lines(lines)
        self.status = status
        # Whole milliseconds, as stored and as sent over the wire.
        self.expires_at = expires_at.replace(microsecond=expires_at.microsecond // 1000 * 1000)
        self.events: list[Event] = []

    @classmethod
    def place(
        cls,
        *,
        id: str,  # noqa: A002 - the aggregate's identity is called id everywhere
        lines: Iterable[ReservationLine],
        expires_at: datetime,
        stock: Mapping[str, StockItem],
    ) -> Reservation:
        """Hold every line's quantity on its stock item, or none (OutOfStock, UnknownSku)."""
        reservation = cls(
            id=id, lines=lines, status=ReservationStatus.RESERVED, expires_at=expires_at
        )
        items = [(reservation._item(stock, line), line.quantity) for line in reservation.lines]
        for item, quantity in items:
            if quantity > item.available:
                raise OutOfStock(item.sku, requested=quantity, available=item.available)
        for item, quantity in items:
            item.hold(quantity)
        reservation.events.append(
            StockReserved(
                reservation_id=reservation.id,
                lines=reservation.stock_lines(),
                expires_at=timestamp(reservation.expires_at),
                occurred_at=occurred_now(),
            )
        )
        return reservation

    def require_lines(self, lines: Iterable[ReservationLine]) -> None:
        """Refuse to treat a reservation of other lines as a repeat of this one."""
        if reservation_lines(lines) != self.lines:
            raise ReservationConflict(self.id)

    def is_overdue(self, now: datetime) -> bool:
        return self.status is ReservationStatus.RESERVED and now >= self.expires_at

    def commit(self, now: datetime, stock: Mapping[str, StockItem]) -> None:
        """The reserved units leave the shelf; a committed reservation stays as it is."""
        if self.status is ReservationStatus.COMMITTED:
            return
        if self.status is not ReservationStatus.RESERVED:
            raise ReservationClosed(self.id, status=self.status, action="committed")
        if self.is_overdue(now):
            raise ReservationClosed(self.id, status=ReservationStatus.EXPIRED, action="committed")
        for line in self.lines:
            self._item(stock, line).ship(line.quantity)
        self.status = ReservationStatus.COMMITTED
        self.events.append(ReservationCommitted(self.id, self.stock_lines(), occurred_now()))

    def release(self, stock: Mapping[str, StockItem]) -> None:
        """The reserved units go back; a released or expired reservation stays as it is."""
        if self.status in (ReservationStatus.RELEASED, ReservationStatus.EXPIRED):
            return
        if self.status is not ReservationStatus.RESERVED:
            raise ReservationClosed(self.id, status=self.status, action="released")
        self._unhold(stock)
        self.status = ReservationStatus.RELEASED
        self.events.append(ReservationReleased(self.id, self.stock_lines(), occurred_now()))

    def return_stock(self, stock: Mapping[str, StockItem]) -> None:
        """The committed units come back on the shelf, once; only a committed reservation
        has units to return."""
        if self.status is ReservationStatus.RETURNED:
            return
        if self.status is not ReservationStatus.COMMITTED:
            raise ReservationClosed(self.id, status=self.status, action="returned")
        for line in self.lines:
            self._item(stock, line).take_back(line.quantity)
        self.status = ReservationStatus.RETURNED
        self.events.append(ReservationReturned(self.id, self.stock_lines(), occurred_now()))

    def expire(self, now: datetime, stock: Mapping[str, StockItem]) -> None:
        """Release an overdue reservation as expired; any other stays as it is."""
        if not self.is_overdue(now):
            return
        self._unhold(stock)
        self.status = ReservationStatus.EXPIRED
        self.events.append(ReservationExpired(self.id, self.stock_lines(), occurred_now()))

    def stock_lines(self) -> tuple[StockLine, ...]:
        """The lines as the ``stock`` topic's events carry them."""
        return tuple(StockLine(sku=line.sku, quantity=line.quantity) for line in self.lines)

    def _unhold(self, stock: Mapping[str, StockItem]) -> None:
        for line in self.lines:
            self._item(stock, line).unhold(line.quantity)

    @staticmethod
    def _item(stock: Mapping[str, StockItem], line: ReservationLine) -> StockItem:
        item = stock.get(line.sku)
        if item is None:
            raise UnknownSku(line.sku)
        return item

    def __repr__(self) -> str:
        return f"Reservation(id={self.id!r}, status={self.status!r})"
