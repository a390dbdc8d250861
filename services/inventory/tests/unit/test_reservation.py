"""A Reservation holds stock for every line or none, and moves through its states once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest.mock import ANY

import pytest

from contracts.events import (
    ReservationCommitted,
    ReservationExpired,
    ReservationReleased,
    StockLine,
    StockReserved,
    timestamp,
)
from inventory.domain.errors import (
    InvalidReservation,
    OutOfStock,
    ReservationClosed,
    ReservationConflict,
    UnknownSku,
)
from inventory.domain.model import (
    DEFAULT_TTL,
    Reservation,
    ReservationLine,
    ReservationStatus,
    StockItem,
    reservation_ttl,
)

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
EXPIRES_AT = NOW + timedelta(minutes=15)
SAFFRON = "SPC-SAFFRON-2G"
RUG = "RUG-ZANAFI-90X140"


# The lines of place(), as the stock topic's events carry them.
PLACED_LINES = (StockLine(RUG, 1), StockLine(SAFFRON, 2))


def shelf(saffron: int = 10, rugs: int = 3) -> dict[str, StockItem]:
    return {
        SAFFRON: StockItem(sku=SAFFRON, on_hand=saffron),
        RUG: StockItem(sku=RUG, on_hand=rugs),
    }


def place(stock: dict[str, StockItem], *lines: ReservationLine) -> Reservation:
    return Reservation.place(
        id="order-1",
        lines=lines or (ReservationLine(SAFFRON, 2), ReservationLine(RUG, 1)),
        expires_at=EXPIRES_AT,
        stock=stock,
    )


def counts(stock: dict[str, StockItem]) -> dict[str, tuple[int, int]]:
    return {sku: (item.on_hand, item.reserved) for sku, item in stock.items()}


def test_placing_a_reservation_holds_every_line_and_records_it() -> None:
    stock = shelf()

    reservation = place(stock)

    assert counts(stock) == {SAFFRON: (10, 2), RUG: (3, 1)}
    assert reservation.status is ReservationStatus.RESERVED
    assert reservation.events == [
        StockReserved(
            reservation_id="order-1",
            lines=PLACED_LINES,
            expires_at=timestamp(EXPIRES_AT),
            occurred_at=ANY,
        )
    ]


def test_when_one_line_is_short_no_line_is_held() -> None:
    stock = shelf(rugs=1)

    with pytest.raises(OutOfStock) as caught:
        place(stock, ReservationLine(SAFFRON, 2), ReservationLine(RUG, 2))

    assert (caught.value.sku, caught.value.requested, caught.value.available) == (RUG, 2, 1)
    assert counts(stock) == {SAFFRON: (10, 0), RUG: (1, 0)}


def test_a_line_for_a_sku_the_inventory_lacks_is_refused() -> None:
    with pytest.raises(UnknownSku):
        place(shelf(), ReservationLine("TEA-UNKNOWN-1", 1))


@pytest.mark.parametrize(
    ("lines", "field"),
    [
        ((), "lines"),
        ((ReservationLine(SAFFRON, 0),), "lines[0].quantity"),
        ((ReservationLine(SAFFRON, -1),), "lines[0].quantity"),
        ((ReservationLine(RUG, 1), ReservationLine("saffron", 1)), "lines[1].sku"),
        ((ReservationLine(SAFFRON, 1), ReservationLine(SAFFRON, 2)), "lines"),
    ],
)
def test_a_reservation_needs_lines_of_distinct_skus_and_positive_quantities(
    lines: tuple[ReservationLine, ...], field: str
) -> None:
    stock = shelf()
    with pytest.raises(InvalidReservation) as caught:
        Reservation.place(id="order-1", lines=lines, expires_at=EXPIRES_AT, stock=stock)

    assert caught.value.field == field


@pytest.mark.parametrize("reservation_id", ["", "order 1", "order/1", "x" * 65])
def test_a_reservation_id_is_short_and_plain(reservation_id: str) -> None:
    with pytest.raises(InvalidReservation) as caught:
        Reservation.place(
            id=reservation_id,
            lines=(ReservationLine(SAFFRON, 1),),
            expires_at=EXPIRES_AT,
            stock=shelf(),
        )

    assert caught.value.field == "reservation_id"


def test_the_same_lines_in_any_order_repeat_a_reservation_and_other_lines_conflict() -> None:
    reservation = place(shelf())

    reservation.require_lines([ReservationLine(RUG, 1), ReservationLine(SAFFRON, 2)])
    with pytest.raises(ReservationConflict):
        reservation.require_lines([ReservationLine(SAFFRON, 3), ReservationLine(RUG, 1)])


def test_expiry_times_are_kept_to_the_millisecond() -> None:
    reservation = Reservation.place(
        id="order-1",
        lines=(ReservationLine(SAFFRON, 1),),
        expires_at=EXPIRES_AT + timedelta(microseconds=1999),
        stock=shelf(),
    )

    assert reservation.expires_at == EXPIRES_AT + timedelta(milliseconds=1)


def test_committing_ships_the_reserved_units_once() -> None:
    stock = shelf()
    reservation = place(stock)

    reservation.commit(NOW, stock)
    reservation.commit(NOW, stock)

    assert reservation.status is ReservationStatus.COMMITTED
    assert counts(stock) == {SAFFRON: (8, 0), RUG: (2, 0)}
    assert reservation.events[1:] == [ReservationCommitted("order-1", PLACED_LINES, ANY)]


def test_releasing_puts_the_reserved_units_back_once() -> None:
    stock = shelf()
    reservation = place(stock)

    reservation.release(stock)
    reservation.release(stock)

    assert reservation.status is ReservationStatus.RELEASED
    assert counts(stock) == {SAFFRON: (10, 0), RUG: (3, 0)}
    assert reservation.events[1:] == [ReservationReleased("order-1", PLACED_LINES, ANY)]


@pytest.mark.parametrize("closing", ["release", "expire"])
def test_a_released_or_expired_reservation_cannot_be_committed(closing: str) -> None:
    stock = shelf()
    reservation = place(stock)
    if closing == "release":
        reservation.release(stock)
    else:
        reservation.expire(EXPIRES_AT, stock)

    with pytest.raises(ReservationClosed) as caught:
        reservation.commit(NOW, stock)

    assert caught.value.action == "committed"
    assert counts(stock) == {SAFFRON: (10, 0), RUG: (3, 0)}


def test_a_committed_reservation_cannot_be_released() -> None:
    stock = shelf()
    reservation = place(stock)
    reservation.commit(NOW, stock)

    with pytest.raises(ReservationClosed) as caught:
        reservation.release(stock)

    assert (caught.value.status, caught.value.action) == ("committed", "released")


def test_a_reservation_past_its_expiry_time_cannot_be_committed_even_before_it_expires() -> None:
    stock = shelf()
    reservation = place(stock)

    with pytest.raises(ReservationClosed) as caught:
        reservation.commit(EXPIRES_AT, stock)

    assert caught.value.status == "expired"
    assert reservation.status is ReservationStatus.RESERVED


def test_expiring_releases_an_overdue_reservation_and_only_an_overdue_one() -> None:
    stock = shelf()
    reservation = place(stock)

    reservation.expire(EXPIRES_AT - timedelta(milliseconds=1), stock)
    assert reservation.status is ReservationStatus.RESERVED

    reservation.expire(EXPIRES_AT, stock)
    reservation.expire(EXPIRES_AT, stock)

    assert reservation.status is ReservationStatus.EXPIRED
    assert counts(stock) == {SAFFRON: (10, 0), RUG: (3, 0)}
    assert reservation.events[1:] == [ReservationExpired("order-1", PLACED_LINES, ANY)]


def test_a_committed_reservation_never_expires() -> None:
    stock = shelf()
    reservation = place(stock)
    reservation.commit(NOW, stock)

    reservation.expire(EXPIRES_AT + timedelta(days=1), stock)

    assert reservation.status is ReservationStatus.COMMITTED


def test_a_release_of_an_expired_reservation_changes_nothing() -> None:
    stock = shelf()
    reservation = place(stock)
    reservation.expire(EXPIRES_AT, stock)

    reservation.release(stock)

    assert reservation.status is ReservationStatus.EXPIRED
    assert counts(stock) == {SAFFRON: (10, 0), RUG: (3, 0)}


def test_the_time_to_live_defaults_to_fifteen_minutes_and_is_at_most_a_day() -> None:
    assert reservation_ttl(None) == DEFAULT_TTL == timedelta(minutes=15)
    assert reservation_ttl(86_400) == timedelta(days=1)
    for seconds in (0, -1, 86_401):
        with pytest.raises(InvalidReservation):
            reservation_ttl(seconds)
