"""What can go wrong in the inventory, in the shop's words."""

from __future__ import annotations


class InventoryError(Exception):
    """An inventory rule was broken, or a stock item or reservation could not be found."""


class UnknownSku(InventoryError):
    """The inventory does not stock this SKU."""

    def __init__(self, sku: str) -> None:
        super().__init__(f"no stock item with SKU {sku!r}")
        self.sku = sku


class ReservationNotFound(InventoryError):
    def __init__(self, reservation_id: str) -> None:
        super().__init__(f"no reservation with id {reservation_id!r}")
        self.reservation_id = reservation_id


class InvalidStockItem(InventoryError):
    """A SKU or a quantity of stock breaks one of the inventory's invariants."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class InvalidReservation(InventoryError):
    """A reservation's id, lines or time to live break one of its invariants."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class OutOfStock(InventoryError):
    """Fewer units of a SKU are available than a reservation asks for."""

    def __init__(self, sku: str, *, requested: int, available: int) -> None:
        super().__init__(f"{sku}: {requested} requested, {available} available")
        self.sku = sku
        self.requested = requested
        self.available = available


class StockStillReserved(InventoryError):
    """An adjustment would leave fewer units on hand than are reserved (or below zero)."""

    def __init__(self, sku: str, *, on_hand: int, reserved: int) -> None:
        super().__init__(f"{sku}: cannot leave {on_hand} on hand with {reserved} reserved")
        self.sku = sku
        self.on_hand = on_hand
        self.reserved = reserved


class ReservationConflict(InventoryError):
    """A reservation id was used again with other lines."""

    def __init__(self, reservation_id: str) -> None:
        super().__init__(f"reservation {reservation_id!r} already exists with other lines")
        self.reservation_id = reservation_id


class ReservationClosed(InventoryError):
    """The reservation's status does not allow this: committing a released one, say."""

    def __init__(self, reservation_id: str, *, status: str, action: str) -> None:
        super().__init__(f"reservation {reservation_id!r} is {status}; it cannot be {action}")
        self.reservation_id = reservation_id
        self.status = status
        self.action = action


class ConcurrentChange(InventoryError):
    """Another request changed the same stock or reservation first; trying again may succeed."""
