"""Repositories over the inventory's tables, implementing the service layer's ports.

Replicas share these tables, so no save writes back what it read: stock is changed by
the difference its item moved since loading, in an UPDATE whose WHERE re-checks the
invariant against the row as it is now; a reservation's status changes only if it is
still the status that was loaded. A save whose WHERE matches nothing is a
ConcurrentChange, and the handler starts again from fresh data.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import CursorResult, insert, select, update
from sqlalchemy.exc import IntegrityError

from inventory.adapters.orm import reservation_lines, reservations, stock
from inventory.domain.errors import ConcurrentChange
from inventory.domain.model import Reservation, ReservationLine, ReservationStatus, StockItem

if TYPE_CHECKING:
    from collections.abc import Collection

    from sqlalchemy import Row
    from sqlalchemy.ext.asyncio import AsyncSession

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND: Final = timedelta(milliseconds=1)


class SqlAlchemyStockRepository:
    """Stock items in the ``stock`` table."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        # (on_hand, reserved) of each item as this repository last read or wrote it.
        self._known: dict[str, tuple[int, int]] = {}

    async def get(self, sku: str) -> StockItem | None:
        row = (await self._session.execute(select(stock).where(stock.c.sku == sku))).one_or_none()
        return None if row is None else self._track(row)

    async def get_many(self, skus: Collection[str]) -> dict[str, StockItem]:
        if not skus:
            return {}
        # In SKU order, as every multi-SKU change updates them: concurrent reservations of
        # overlapping SKUs then lock rows in the same order and cannot deadlock.
        rows = await self._session.execute(
            select(stock).where(stock.c.sku.in_(skus)).order_by(stock.c.sku)
        )
        return {row.sku: self._track(row) for row in rows}

    async def add(self, item: StockItem) -> None:
        try:
            await self._session.execute(
                insert(stock).values(sku=item.sku, on_hand=item.on_hand, reserved=item.reserved)
            )
        except IntegrityError as error:
            raise ConcurrentChange(f"stock item {item.sku} was added meanwhile") from error
        self._known[item.sku] = (item.on_hand, item.reserved)

    async def save(self, item: StockItem) -> None:
        on_hand, reserved = self._known[item.sku]
        more_on_hand, more_reserved = item.on_hand - on_hand, item.reserved - reserved
        if more_on_hand == more_reserved == 0:
            return
        new_on_hand = stock.c.on_hand + more_on_hand
        new_reserved = stock.c.reserved + more_reserved
        row = (
            await self._session.execute(
                update(stock)
                .where(stock.c.sku == item.sku, new_reserved >= 0, new_on_hand >= new_reserved)
                .values(on_hand=new_on_hand, reserved=new_reserved)
                .returning(stock.c.on_hand, stock.c.reserved)
            )
        ).one_or_none()
        if row is None:
            raise ConcurrentChange(f"stock of {item.sku} changed meanwhile")
        # Others' changes made meanwhile show too: the item now says what the row says.
        item.on_hand, item.reserved = row.on_hand, row.reserved
        self._known[item.sku] = (item.on_hand, item.reserved)

    def _track(self, row: Row[Any]) -> StockItem:
        self._known[row.sku] = (row.on_hand, row.reserved)
        return StockItem(sku=row.sku, on_hand=row.on_hand, reserved=row.reserved)


class SqlAlchemyReservationRepository:
    """Reservations in ``reservations``, their lines in ``reservation_lines``."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        # The status each reservation had when this repository last read or wrote it.
        self._statuses: dict[str, ReservationStatus] = {}
        self.written: list[Reservation] = []
        """The reservations added or saved in this transaction, whose events it publishes."""

    async def get(self, reservation_id: str) -> Reservation | None:
        row = (
            await self._session.execute(
                select(reservations).where(reservations.c.id == reservation_id)
            )
        ).one_or_none()
        if row is None:
            return None
        lines = await self._session.execute(
            select(reservation_lines.c.sku, reservation_lines.c.quantity).where(
                reservation_lines.c.reservation_id == reservation_id
            )
        )
        reservation = Reservation(
            id=row.id,
            lines=[ReservationLine(sku=sku, quantity=quantity) for sku, quantity in lines],
            status=ReservationStatus(row.status),
            expires_at=_EPOCH + row.expires_at_ms * _MILLISECOND,
        )
        self._statuses[reservation.id] = reservation.status
        return reservation

    async def add(self, reservation: Reservation) -> None:
        try:
            await self._session.execute(
                insert(reservations).values(
                    id=reservation.id,
                    status=str(reservation.status),
                    expires_at_ms=(reservation.expires_at - _EPOCH) // _MILLISECOND,
                )
            )
        except IntegrityError as error:
            raise ConcurrentChange(
                f"reservation {reservation.id!r} was placed meanwhile"
            ) from error
        await self._session.execute(
            insert(reservation_lines),
            [
                {"reservation_id": reservation.id, "sku": line.sku, "quantity": line.quantity}
                for line in reservation.lines
            ],
        )
        self._statuses[reservation.id] = reservation.status
        self._written(reservation)

    async def save(self, reservation: Reservation) -> None:
        loaded = self._statuses[reservation.id]
        if reservation.status == loaded:
            return
        result = await self._session.execute(
            update(reservations)
            .where(reservations.c.id == reservation.id, reservations.c.status == str(loaded))
            .values(status=str(reservation.status))
        )
        if not isinstance(result, CursorResult) or result.rowcount != 1:
            raise ConcurrentChange(f"reservation {reservation.id!r} changed meanwhile")
        self._statuses[reservation.id] = reservation.status
        self._written(reservation)

    async def overdue(self, now: datetime, limit: int) -> list[str]:
        ids = await self._session.scalars(
            select(reservations.c.id)
            .where(
                reservations.c.status == str(ReservationStatus.RESERVED),
                reservations.c.expires_at_ms <= (now - _EPOCH) // _MILLISECOND,
            )
            .order_by(reservations.c.expires_at_ms)
            .limit(limit)
        )
        return list(ids)

    def _written(self, reservation: Reservation) -> None:
        if all(written is not reservation for written in self.written):
            self.written.append(reservation)
